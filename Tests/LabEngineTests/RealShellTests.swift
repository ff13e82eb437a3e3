import Foundation
import SSH
import LabSpec
import Testing
@testable import LabEngine

/// Probes and plans run by this machine's real sh against real files in a scratch directory:
/// first run changes, second run has nothing to do.
@Suite struct RealShellTests {
    @Test(arguments: [
        "", "plain", "with space", "it's", "'", "''", "a\"b", "$HOME", "`id`", "$(id)", "a\\b", "line\nbreak", "*", "~",
        "semi;colon", "-n", "tab\there", "ünïcödé", "!bang", "%s", "a'b'c", "back\\'slash",
    ])
    func quotingSurvivesTheShell(_ value: String) async {
        let result = await shell("printf '%s' " + Shell.quote(value))
        #expect(result.stdout == value)
    }

    @Test func fileConvergesAndValidateFailureKeepsTheOldFile() async throws {
        let scratch = Scratch()
        let path = scratch.file("site.conf")
        let options = PlanOptions(backupDirectory: scratch.file("backups"))
        let first = FileOperation(path: path, content: "one\n", mode: 0o640, options: options)
        #expect(try await converge(first).isEmpty == false)
        #expect(scratch.read("site.conf") == "one\n")
        #expect(await shell("stat -c %a " + Shell.quote(path)).stdout == "640\n")
        #expect(try await converge(first).isEmpty, "second run changes nothing")

        // A failing validate leaves the old content and no temporary file behind.
        let bad = FileOperation(path: path, content: "two\n", validate: "grep -q three %s", options: options)
        await #expect(throws: StepFailure("validation failed:")) { try await converge(bad) }
        #expect(scratch.read("site.conf") == "one\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["site.conf"])

        // A passing validate replaces it, keeps the mode and backs the old content up.
        let good = FileOperation(path: path, content: "three\n", validate: "grep -q three %s", options: options)
        #expect(try await converge(good).isEmpty == false)
        #expect(scratch.read("site.conf") == "three\n")
        #expect(await shell("stat -c %a " + Shell.quote(path)).stdout == "640\n")
        let backups = try FileManager.default.contentsOfDirectory(atPath: scratch.file("backups") + scratch.path)
        #expect(backups.count == 1)
        #expect(backups.first?.hasPrefix("site.conf.") == true)
        #expect(try String(contentsOfFile: scratch.file("backups") + scratch.path + "/" + backups[0], encoding: .utf8) == "one\n")
        #expect(try await converge(good).isEmpty)
    }

    @Test func aSymbolicLinkIsFollowedAndKept() async throws {
        let scratch = Scratch()
        scratch.write("available/site", "old\n")
        try FileManager.default.createDirectory(atPath: scratch.file("enabled"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scratch.file("enabled/site"), withDestinationPath: "../available/site")
        let options = PlanOptions(backupDirectory: scratch.file("backups"))
        let op = FileOperation(path: scratch.file("enabled/site"), content: "new\n", mode: 0o640, options: options)
        #expect(try await converge(op).isEmpty == false)
        #expect(try await converge(op).isEmpty)
        #expect(scratch.read("available/site") == "new\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.file("enabled/site")) == "../available/site")
        let line = LineOperation(path: scratch.file("enabled/site"), line: "more", options: options)
        #expect(try await converge(line).isEmpty == false)
        #expect(try await converge(line).isEmpty)
        #expect(scratch.read("available/site") == "new\nmore\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.file("enabled/site")) == "../available/site")
    }

    @Test func fileProbeSeesOwnerModeAndChecksum() async {
        let scratch = Scratch()
        scratch.write("a", "hello\n")
        let facts = await probe(FileOperation(path: scratch.file("a"), content: "x", options: PlanOptions(diff: true)))
        #expect(facts["kind"] == "file")
        #expect(facts["stat"] == "root:root:644")
        #expect(facts["sha256"] == SHA256Digest.hex("hello\n"))
        #expect(facts.text("content") == "hello\n")
        #expect(facts["parent"] == "dir")
        #expect(facts["probe.status"] == "0")
    }

    @Test func directoryConverges() async throws {
        let scratch = Scratch()
        let op = DirectoryOperation(path: scratch.file("a/b c"), mode: 0o750)
        #expect(try await converge(op).isEmpty == false)
        #expect(await shell("stat -c %a " + Shell.quote(scratch.file("a/b c"))).stdout == "750\n")
        #expect(try await converge(op).isEmpty)
        #expect(try await converge(DirectoryOperation(path: scratch.file("a"), state: .absent)).isEmpty == false)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("a")))
    }

    @Test func blockAndLineConverge() async throws {
        let scratch = Scratch()
        scratch.write("nginx.conf", "events {}\nhttp {\n    sendfile on;\n}\n")
        let options = PlanOptions(backupDirectory: scratch.file("backups"))
        let block = ManagedBlockOperation(
            path: scratch.file("nginx.conf"), block: "    include /etc/nginx/dumbways/*;", insertAfter: #"^\s*http\s*\{"#, options: options)
        #expect(try await converge(block).isEmpty == false)
        #expect(try await converge(block).isEmpty)
        #expect(scratch.read("nginx.conf") == "events {}\nhttp {\n# BEGIN LABCTL MANAGED BLOCK\n    include /etc/nginx/dumbways/*;\n# END LABCTL MANAGED BLOCK\n    sendfile on;\n}\n")
        let line = LineOperation(path: scratch.file("nginx.conf"), line: "    sendfile off;", regexp: #"^\s*sendfile"#, options: options)
        #expect(try await converge(line).isEmpty == false)
        #expect(try await converge(line).isEmpty)
        #expect(scratch.read("nginx.conf")?.contains("    sendfile off;\n") == true)
    }

    @Test func commandGuards() async throws {
        let scratch = Scratch()
        let marker = scratch.file("done")
        let op = CommandOperation(run: "echo ran > " + Shell.quote(marker), creates: marker)
        #expect(try await converge(op).isEmpty == false)
        #expect(try await converge(op).isEmpty)
        let unless = CommandOperation(run: "false", unless: "test -e " + Shell.quote(marker))
        #expect(try await converge(unless).isEmpty)
    }

    @Test func commandAsAnotherUserWithEnvironmentAndDirectory() async throws {
        let op = CommandOperation(run: #"echo "$(id -un) $(pwd) $GREETING""#, chdir: "/tmp", user: "nobody", env: ["GREETING": "it's $HOME"])
        let plan = try op.plan(Facts())
        let result = await shell(plan.script)
        #expect(result.stdout == "nobody /tmp it's $HOME\n")
    }

    @Test func gitClonesThenFollowsTheBranch() async throws {
        let scratch = Scratch()
        let origin = scratch.file("origin")
        let setup = await shell("""
            set -e
            git init -q -b main \(Shell.quote(origin))
            cd \(Shell.quote(origin))
            git -c user.email=t@t -c user.name=t commit -q --allow-empty -m one
            git tag v1
            """)
        #expect(setup.status == 0, "\(setup.stderr)")
        let dest = scratch.file("clone")
        let op = GitOperation(repo: origin, dest: dest, ref: "main")
        #expect(try await converge(op).isEmpty == false)
        #expect(try await converge(op).isEmpty)
        _ = await shell("cd \(Shell.quote(origin)) && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m two")
        let moved = try await converge(op)
        #expect(moved.summary.first?.hasPrefix("move ") == true)
        let head = await shell("git -C \(Shell.quote(dest)) rev-parse HEAD").stdout
        let want = await shell("git -C \(Shell.quote(origin)) rev-parse main").stdout
        #expect(head == want)
        // A clone another user owns (the app's user) is still recognised and followed.
        _ = await shell("chown -R nobody " + Shell.quote(dest))
        #expect(try await converge(op).isEmpty)
        _ = await shell("cd \(Shell.quote(origin)) && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m three")
        #expect(try await converge(op).isEmpty == false)
        #expect(try await converge(op).isEmpty)
        // A tag is resolved to its commit.
        let tagged = GitOperation(repo: origin, dest: dest, ref: "v1")
        #expect(try await converge(tagged).isEmpty == false)
        #expect(try await converge(tagged).isEmpty)
        await #expect(throws: StepFailure("\(origin) has no branch or tag named nope")) {
            try await converge(GitOperation(repo: origin, dest: dest, ref: "nope"))
        }
    }

    @Test func uploadDigestMatchesTheHostAndTheTarUnpacks() async throws {
        let scratch = Scratch()
        scratch.write("src/package.json", "{\"name\":\"standin\"}\n")
        scratch.write("src/server.js", "console.log('hi')\n")
        scratch.write("src/public/index.html", "<h1>WaysHub</h1>\n")
        scratch.write("src/a b/Ünï.txt", "x")
        try FileManager.default.createDirectory(atPath: scratch.file("src/empty"), withIntermediateDirectories: true)
        _ = await shell("chmod 755 " + Shell.quote(scratch.file("src/server.js")))
        let tree = try LocalTree.load(scratch.file("src"))
        #expect(tree.fileCount == 4)
        let hostDigest = await shell("cd \(Shell.quote(scratch.file("src"))) && \(LocalTree.remoteDigestPipeline)").stdout
        #expect(hostDigest == tree.digest + "\n")

        let op = UploadOperation(source: tree, dest: scratch.file("dest"))
        #expect(try await converge(op).isEmpty == false)
        #expect(try await converge(op).isEmpty)
        #expect(scratch.read("dest/public/index.html") == "<h1>WaysHub</h1>\n")
        #expect(scratch.read("dest/a b/Ünï.txt") == "x")
        #expect(FileManager.default.fileExists(atPath: scratch.file("dest/empty")))
        #expect(await shell("stat -c %a " + Shell.quote(scratch.file("dest/server.js"))).stdout == "755\n")
        scratch.write("src/server.js", "console.log('changed')\n")
        #expect(try await converge(UploadOperation(source: try LocalTree.load(scratch.file("src")), dest: scratch.file("dest"))).isEmpty == false)
        #expect(scratch.read("dest/server.js") == "console.log('changed')\n")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("dest.labctl-old")))
    }

    @Test func keptEntriesDoNotCountOnEitherSide() async throws {
        let scratch = Scratch()
        scratch.write("src/package.json", "{}\n")
        scratch.write("src/node_modules/local-only.js", "x")
        let op = UploadOperation(source: try LocalTree.load(scratch.file("src")), dest: scratch.file("dest"), keep: ["node_modules"])
        #expect(try await converge(op).isEmpty == false)
        scratch.write("dest/node_modules/made-on-the-host.js", "y")
        #expect(try await converge(op).isEmpty, "node_modules differs, but it is kept")
        let hostDigest = await shell("cd \(Shell.quote(scratch.file("dest"))) && \(LocalTree.remoteDigestPipeline(excluding: ["node_modules"]))").stdout
        #expect(hostDigest == op.source.digest(excluding: ["node_modules"]) + "\n")
    }

    /// An upload that fails after the kept entries were moved into the new copy (its owner does
    /// not exist): the old copy, node_modules and all, is as it was, and no staging is left.
    @Test func aFailedUploadLeavesTheOldCopyWhole() async throws {
        let scratch = Scratch()
        scratch.write("src/server.js", "old\n")
        let old = UploadOperation(source: try LocalTree.load(scratch.file("src")), dest: scratch.file("dest"), keep: ["node_modules"])
        try await converge(old)
        scratch.write("dest/node_modules/made-on-the-host.js", "y")
        scratch.write("src/server.js", "new\n")
        let failing = UploadOperation(
            source: try LocalTree.load(scratch.file("src")), dest: scratch.file("dest"), owner: "labctl-no-such-user", keep: ["node_modules"])
        await #expect(throws: StepFailure.self) { try await converge(failing) }
        #expect(scratch.read("dest/server.js") == "old\n")
        #expect(scratch.read("dest/node_modules/made-on-the-host.js") == "y")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("dest.labctl-new")))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("dest.labctl-old")))
    }

    @Test func longPathsInTheTar() async throws {
        let scratch = Scratch()
        let deep = (1...12).map { "directory\($0)" }.joined(separator: "/")
        scratch.write("src/\(deep)/file-with-a-long-name.txt", "deep")
        let tree = try LocalTree.load(scratch.file("src"))
        try await converge(UploadOperation(source: tree, dest: scratch.file("dest")))
        #expect(scratch.read("dest/\(deep)/file-with-a-long-name.txt") == "deep")
    }

    @Test func packageProbeReadsDpkgAndApt() async throws {
        // Read-only: the probe asks dpkg and apt; nothing is installed.
        let op = PackageOperation(names: ["dpkg", "labctl-surely-not-a-package"])
        let facts = await probe(op)
        #expect(facts["installed.0"] == "yes")
        #expect(facts["installed.1"] == "no")
        #expect(facts["candidate.1"] == "")
        #expect(facts["lists.age"] != nil)
        let plan = try op.plan(facts)
        #expect(plan.commands.count == 2, "an unknown package makes the index refresh first")
        #expect(plan.summary == ["install labctl-surely-not-a-package"])
    }

    @Test func packageProbeAsksAptOnlyWhenSomethingIsMissing() async throws {
        // A stand-in apt-cache first in PATH logs what it is asked, then asks the real one.
        let scratch = Scratch()
        scratch.write("bin/apt-cache", "#!/bin/sh\necho \"$*\" >> \"$0.log\"\nexec /usr/bin/apt-cache \"$@\"\n")
        _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/apt-cache")))
        func probeWithStandIn(_ op: PackageOperation) async -> Facts {
            let script = ProbeScript(probes: [(0, op.probe)])
            let output = await shell("PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH; " + script.script)
            return script.parse(output.stdout)[0] ?? Facts()
        }
        let installed = PackageOperation(names: ["dpkg", "apt"])
        let facts = await probeWithStandIn(installed)
        #expect(facts["installed.0"] == "yes" && facts["installed.1"] == "yes")
        #expect(facts["candidate.0"] == nil && facts["lists.age"] == nil)
        #expect(facts["probe.status"] == "0")
        #expect(scratch.read("bin/apt-cache.log") == nil, "installed packages need no apt query")
        #expect(try installed.plan(facts) == .unchanged)

        let mixed = PackageOperation(names: ["dpkg", "labctl-surely-not-a-package"])
        let mixedFacts = await probeWithStandIn(mixed)
        #expect(mixedFacts["candidate.0"] == nil)
        #expect(mixedFacts["candidate.1"] == "")
        #expect(mixedFacts["lists.age"] != nil)
        #expect(scratch.read("bin/apt-cache.log") == "policy labctl-surely-not-a-package\n", "only the missing package is asked about")
    }

    @Test func aptUpdateRetriesOnlyOnALock() async throws {
        // A stand-in apt-get first in PATH: it reports the lock twice, then succeeds.
        let scratch = Scratch()
        scratch.write("bin/apt-get", "#!/bin/sh\nn=$(cat \"$0.count\" 2>/dev/null || echo 0); echo $((n+1)) > \"$0.count\"\nif [ \"$n\" -lt 2 ]; then echo 'E: Could not get lock /var/lib/apt/lists/lock' >&2; exit 100; fi\necho updated\n")
        _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/apt-get")))
        let path = "PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH; "
        let locked = await shell(path + PackageOperation.update.replacingOccurrences(of: "sleep 3", with: "sleep 0"))
        #expect(locked.status == 0)
        #expect(scratch.read("bin/apt-get.count") == "3\n")
        scratch.write("bin/apt-get", "#!/bin/sh\necho 'E: The repository is not signed.' >&2\nexit 100\n")
        _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/apt-get")))
        let broken = await shell(path + PackageOperation.update)
        #expect(broken.status == 1)
        #expect(broken.stderr == "E: The repository is not signed.\n")
    }

    @Test func aStaleIndexIsRefreshedOnceWhenTheInstallFails() async throws {
        // A stand-in apt-get that logs its verbs; the first install fails as with a 404.
        let scratch = Scratch()
        scratch.write("bin/apt-get", """
            #!/bin/sh
            for a in "$@"; do case "$a" in update|install) echo "$a" >> "$0.log";; esac; done
            case "$*" in *install*) [ -e "$0.failed" ] || { touch "$0.failed"; echo 'E: Failed to fetch ... 404 Not Found' >&2; exit 100; };; esac
            exit 0

            """)
        _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/apt-get")))
        let plan = try PackageOperation(names: ["nginx"]).plan(Facts(["installed.0": "no", "candidate.0": "1.22", "lists.age": "60"]))
        let result = await shell("PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH; " + plan.script)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(scratch.read("bin/apt-get.log") == "install\nupdate\ninstall\n")
    }

    @Test func serviceOnAHostWithoutSystemd() async throws {
        // This build machine's PID 1 is not systemd: the probe must say so and the plan refuse.
        try #require(!FileManager.default.fileExists(atPath: "/run/systemd/system"))
        let op = ServiceOperation(name: "nginx", state: .started)
        let facts = await probe(op)
        #expect(facts["systemd"] == "no")
        #expect(throws: StepFailure("the host does not run systemd (no /run/systemd/system), so the unit nginx cannot be managed; service steps need a systemd host")) {
            try op.plan(facts)
        }
    }

    @Test func serviceProbeAsksSystemctlOnceUnlessTheNameIsAnAlias() async throws {
        // This machine has no systemd, so the probe runs past its systemd guard against a
        // stand-in systemctl that answers `show` as systemd 252 does and logs every call.
        let scratch = Scratch()
        scratch.write("bin/systemctl", """
            #!/bin/sh
            echo "$1" >> "$0.log"
            case "$1" in
            show) printf 'Id=%s\\nNeedDaemonReload=no\\nActiveState=active\\nLoadState=loaded\\nUnitFileState=enabled\\n' "$UNIT_ID";;
            is-enabled) echo alias;;
            esac

            """)
        _ = await shell("chmod +x " + Shell.quote(scratch.file("bin/systemctl")))
        func probeWithStandIn(_ op: ServiceOperation, id: String) async throws -> Facts {
            var lines = op.probe.split(separator: "\n", omittingEmptySubsequences: false)
            try #require(lines.first?.contains("/run/systemd/system") == true)
            lines.removeFirst()
            let script = ProbeScript(probes: [(0, lines.joined(separator: "\n"))])
            let env = "PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH; UNIT_ID=" + Shell.quote(id) + "; export UNIT_ID; "
            let output = await shell(env + script.script)
            return script.parse(output.stdout)[0] ?? Facts()
        }
        let ssh = ServiceOperation(name: "ssh", enabled: true, state: .started)
        let facts = try await probeWithStandIn(ssh, id: "ssh.service")
        #expect(facts.values.filter { $0.key != "probe.status" } == ["systemd": "yes", "load": "loaded", "enabled": "enabled", "active": "active", "reload": "no"])
        #expect(scratch.read("bin/systemctl.log") == "show\n")
        #expect(try ssh.plan(facts) == .unchanged)

        // sshd is an alias of ssh.service: is-enabled's own word ("alias") is asked for.
        let alias = try await probeWithStandIn(ServiceOperation(name: "sshd", enabled: true), id: "ssh.service")
        #expect(alias["enabled"] == "alias")
        #expect(scratch.read("bin/systemctl.log") == "show\nshow\nis-enabled\n")
    }

    @Test func waitForAURLThatAnswers() async throws {
        let port = Int.random(in: 20000...40000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.1", String(port)]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: processes started from the test runner here ignore SIGTERM.
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        // The wait_for plan itself is what waits for the server to come up.
        let op = WaitForOperation(url: "http://127.0.0.1:\(port)/", timeout: 20)
        try await converge(op)
        #expect(await probe(op)["up"] == "yes")
        #expect(await probe(WaitForOperation(port: port))["up"] == "yes")
        #expect(try op.plan(await probe(op)) == .unchanged)
    }

    @Test func waitForAPortThatAnswersAndOneThatDoesNot() async throws {
        let closed = WaitForOperation(port: 1, timeout: 1)
        #expect(await probe(closed)["up"] == "no")
        await #expect(throws: StepFailure("127.0.0.1:1 did not answer within 1 s")) { try await converge(closed) }
    }

    static func numbered(_ range: ClosedRange<Int>, _ text: (Int) -> String) -> String {
        range.map { text($0) + "\n" }.joined()
    }

    static let diffCases: [(String, String)] = [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("", "new\nfile\n"),
        ("one\n", ""),
        (numbered(1...30) { "line \($0)" }, numbered(1...30) { $0 == 5 || $0 == 25 ? "changed \($0)" : "line \($0)" }),
        (numbered(1...10) { "l\($0)" }, numbered(1...10) { $0 == 4 ? "" : "l\($0)" } + "tail\n"),
    ]

    @Test(arguments: diffCases)
    func unifiedDiffAgreesWithDiffU(_ old: String, _ new: String) async {
        let scratch = Scratch()
        scratch.write("old", old)
        scratch.write("new", new)
        let reference = await shell("diff -u \(Shell.quote(scratch.file("old"))) \(Shell.quote(scratch.file("new"))) | tail -n +3").stdout
        let ours = UnifiedDiff.make(old: old, new: new, path: "f").split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)[2]
        #expect(String(ours) == reference)
    }
}
