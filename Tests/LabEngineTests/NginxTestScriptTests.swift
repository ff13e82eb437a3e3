import Foundation
import Testing
@testable import LabEngine

/// playbooks/templates/nginx-test.sh, run here as root with a stand-in `nginx` that records the
/// file it finds at the live path and accepts it only when it says "good": the staged file must
/// be what nginx sees, and never what anything outside the test sees.
@Suite struct NginxTestScriptTests {
    let scratch = Scratch()
    var live: String { scratch.file("nginx/dumbways/site.conf") }

    init() async throws {
        let script = try String(
            contentsOf: ShippedPlaybookTests.root.appendingPathComponent("playbooks/templates/nginx-test.sh"), encoding: .utf8)
        scratch.write("nginx-test", script)
        scratch.write("bin/nginx", "#!/bin/sh\ncat \"$LIVE\" > \"$SEEN\"\ngrep -q good \"$LIVE\"\n")
        scratch.write("tmp/.keep", "")
        _ = await shell("chmod +x " + Shell.quote(scratch.file("nginx-test")) + " " + Shell.quote(scratch.file("bin/nginx")))
    }

    /// Runs the script on a staged file with `content`; `namespaces: false` puts a failing
    /// `unshare` first in PATH, as on a host that refuses mount namespaces.
    func test(staged content: String, namespaces: Bool) async -> Int32 {
        scratch.write("staged", content)
        if !namespaces {
            scratch.write("bin/unshare", "#!/bin/sh\nexit 1\n")
            _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/unshare")))
        }
        let environment = [
            "PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH", "TMPDIR=" + Shell.quote(scratch.file("tmp")),
            "LIVE=" + Shell.quote(live), "SEEN=" + Shell.quote(scratch.file("seen")),
        ]
        let run = "export " + environment.joined(separator: " ") + "; "
            + [scratch.file("nginx-test"), scratch.file("staged"), live].map(Shell.quote).joined(separator: " ")
        return await shell(run).status
    }

    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: scratch.file("tmp")).filter { $0 != ".keep" }
            + FileManager.default.contentsOfDirectory(atPath: scratch.file("nginx/dumbways")).filter { $0 != "site.conf" && $0 != "other.conf" }
    }

    @Test(arguments: [true, false])
    func nginxSeesTheStagedFileAndTheLiveOneStays(namespaces: Bool) async throws {
        scratch.write("nginx/dumbways/site.conf", "old\n")
        scratch.write("nginx/dumbways/other.conf", "kept\n")
        #expect(await test(staged: "good new\n", namespaces: namespaces) == 0)
        #expect(scratch.read("seen") == "good new\n")
        #expect(scratch.read("nginx/dumbways/site.conf") == "old\n")
        #expect(await test(staged: "bad new\n", namespaces: namespaces) != 0)
        #expect(scratch.read("seen") == "bad new\n")
        #expect(scratch.read("nginx/dumbways/site.conf") == "old\n")
        #expect(scratch.read("nginx/dumbways/other.conf") == "kept\n")
        #expect(try leftovers() == [])
    }

    @Test(arguments: [true, false])
    func aFirstConfigIsTestedWithoutStayingBehind(namespaces: Bool) async throws {
        try FileManager.default.createDirectory(atPath: scratch.file("nginx/dumbways"), withIntermediateDirectories: true)
        #expect(await test(staged: "good first\n", namespaces: namespaces) == 0)
        #expect(scratch.read("seen") == "good first\n")
        #expect(!FileManager.default.fileExists(atPath: live))
        #expect(try leftovers() == [])
    }

    @Test func withNamespacesTheLivePathNeverHoldsTheStagedFile() async throws {
        // While the stand-in nginx runs (it waits for a go-ahead), a watcher outside the
        // namespace reads the live path: there it must still be the old file.
        scratch.write("bin/nginx", """
            #!/bin/sh
            cat "$LIVE" > "$SEEN.tmp" && mv "$SEEN.tmp" "$SEEN"
            n=0; while [ ! -e "$SEEN.checked" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
            grep -q good "$LIVE"

            """)
        scratch.write("nginx/dumbways/site.conf", "old\n")
        scratch.write("staged", "good new\n")
        let seen = Shell.quote(scratch.file("seen"))
        let watcher = "( n=0; while [ ! -e \(seen) ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done; "
            + "cat \(Shell.quote(live)) > \(seen).outside; touch \(seen).checked ) & "
        let run = "chmod +x \(Shell.quote(scratch.file("bin/nginx"))); export PATH=\(Shell.quote(scratch.file("bin"))):$PATH "
            + "TMPDIR=\(Shell.quote(scratch.file("tmp"))) LIVE=\(Shell.quote(live)) SEEN=\(seen); " + watcher
            + [scratch.file("nginx-test"), scratch.file("staged"), live].map(Shell.quote).joined(separator: " ") + "; s=$?; wait; exit $s"
        #expect(await shell(run).status == 0)
        #expect(scratch.read("seen") == "good new\n")
        #expect(scratch.read("seen.outside") == "old\n")
    }
}
