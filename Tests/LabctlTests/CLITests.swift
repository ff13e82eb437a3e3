import Foundation
import SSH
import TestSupport
import Testing

/// `labctl ping` and `labctl exec` through the built executable, against real sshd instances.
@Suite final class CLITests {
    let servers: [TestSSHServer]
    let folder: TemporaryDirectory
    let inventoryPath: String

    init() throws {
        servers = try (0..<2).map { _ in try TestSSHServer() }
        folder = try TemporaryDirectory(prefix: "labctl-cli")
        let knownHosts = servers.map(\.hostPublicKeyLine).joined(separator: "\n") + "\n"
        try knownHosts.write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        inventoryPath = folder.file("inventory.json")
        try writeInventory(servers.enumerated().map { index, server in
            (name: "web\(index + 1)", port: server.port, key: server.clientKeyPath)
        })
    }

    deinit { folder.remove() }

    func writeInventory(_ hosts: [(name: String, port: Int, key: String)]) throws {
        let entries = hosts.map { host in
            #"{ "name": "\#(host.name)", "address": "127.0.0.1", "port": \#(host.port), "key": "\#(host.key)", "roles": ["web"] }"#
        }
        let json = """
            { "name": "cli-test", "ssh": { "known_hosts": "known_hosts" },
              "hosts": [\(entries.joined(separator: ",\n"))] }
            """
        try json.write(toFile: inventoryPath, atomically: true, encoding: .utf8)
    }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments, check: false)
    }

    @Test func pingReportsEveryHost() throws {
        let result = try labctl(["ping", "-i", inventoryPath])
        #expect(result.status == 0, "\(result.stderr)\(result.stdout)")
        for name in ["web1", "web2"] {
            let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix(name) })
            #expect(line.contains(" ok "))
            #expect(line.contains("logged in as root"))
            #expect(line.contains("Linux"))
        }
    }

    @Test func pingNamesTheHostThatIsDownAndExitsThree() throws {
        servers[1].stop()
        let result = try labctl(["ping", "-i", inventoryPath])
        #expect(result.status == 3)
        let web2 = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("web2") })
        #expect(web2.contains("UNREACHABLE"))
        #expect(web2.contains("connection refused"))
        let web1 = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("web1") })
        #expect(web1.contains(" ok "))
    }

    @Test func pingRefusesAnUnknownHostKey() throws {
        try "".write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        let result = try labctl(["ping", "-i", inventoryPath, "web1"])
        #expect(result.status == 3)
        #expect(result.stdout.contains("is not in"))
        let accepted = try labctl(["ping", "-i", inventoryPath, "--host-key-checking", "accept-new"])
        #expect(accepted.status == 0, "\(accepted.stdout)")
        #expect(try String(contentsOfFile: folder.file("known_hosts"), encoding: .utf8).split(separator: "\n").count == 2)
        // Which keys were recorded, so that the user can compare them with the hosts' own.
        #expect(accepted.stdout.contains("its host key was recorded (ssh-ed25519 SHA256:"), "\(accepted.stdout)")
        let again = try labctl(["ping", "-i", inventoryPath, "--host-key-checking", "accept-new"])
        #expect(!again.stdout.contains("was recorded"), "\(again.stdout)")
        // A playbook run says it too, once per host whose key it recorded.
        try "".write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        try "- { name: look, hosts: web1, command: 'true' }\n".write(toFile: folder.file("look.yml"), atomically: true, encoding: .utf8)
        let run = try labctl(["run", "-i", inventoryPath, folder.file("look.yml"), "--state-dir", folder.file("state"), "--host-key-checking", "accept-new"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("web1: its host key was recorded in known_hosts (ssh-ed25519 SHA256:"), "\(run.stdout)")
        let runAgain = try labctl(["run", "-i", inventoryPath, folder.file("look.yml"), "--state-dir", folder.file("state"), "--host-key-checking", "accept-new"])
        #expect(!runAgain.stdout.contains("was recorded"), "\(runAgain.stdout)")
    }

    @Test func execStreamsLinesWithHostNamesAndSummarises() throws {
        let result = try labctl(["exec", "-i", inventoryPath, "all", "--", "echo hello; echo oops >&2; test $(id -un) = root"])
        #expect(result.status == 0, "\(result.stderr)\(result.stdout)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for name in ["web1", "web2"] {
            #expect(lines.contains("\(name) | hello"))
            #expect(lines.contains("\(name) ! oops"))
            #expect(lines.contains { $0.hasPrefix(name) && $0.contains("ok, exit 0") })
        }
    }

    @Test func execFailureOnOneHostExitsTwo() throws {
        let result = try labctl(["exec", "-i", inventoryPath, "web1,web2", "--", "sh", "-c", "exit 7"])
        #expect(result.status == 2)
        #expect(result.stdout.contains("FAILED, exit 7"))
        let one = try labctl(["exec", "-i", inventoryPath, "web2", "--", "printf", "%s\\n", "two words"])
        #expect(one.stdout.contains("web2 | two words"))
        #expect(!one.stdout.contains("web1"))
    }

    /// On a terminal (a pty from `script`), a step running past a second shows the status line;
    /// through a pipe the same run prints no cursor codes at all.
    @Test func aLongStepShowsAStatusLineOnlyOnATerminal() throws {
        try "- { name: a slow step, hosts: web1, command: sleep 1.8 }\n".write(
            toFile: folder.file("slow.yml"), atomically: true, encoding: .utf8)
        // labctl's state (the host lock) goes to the test's folder, not this machine's /var/lib/labctl.
        let command = [labctlExecutablePath, "run", "-i", inventoryPath, folder.file("slow.yml"), "--state-dir", folder.file("state")]
        let onTerminal = try runLocal(
            ["script", "-qec", command.map(ShellQuoting.quote).joined(separator: " "), "/dev/null"], environment: ["TERM": "xterm"],
            check: false)
        #expect(onTerminal.status == 0, "\(onTerminal.stdout)\(onTerminal.stderr)")
        #expect(onTerminal.stdout.contains("web1: a slow step 1s"), "\(onTerminal.stdout)")
        // The line is gone before the recap: the last clear comes before it.
        let recap = try #require(onTerminal.stdout.range(of: "RECAP"))
        let lastClear = try #require(onTerminal.stdout.range(of: "\u{1B}[2K", options: .backwards))
        #expect(lastClear.upperBound <= recap.lowerBound)
        let piped = try labctl(["run", "-i", inventoryPath, folder.file("slow.yml"), "--state-dir", folder.file("state")])
        #expect(piped.status == 0)
        #expect(!piped.stdout.contains("\u{1B}"), "\(piped.stdout)")
    }

    /// stdout as one JSON object.
    func document(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(text)", sourceLocation: sourceLocation)
    }

    /// `--json -` on ping and exec: stdout is one JSON document with schemaVersion 1, the
    /// table goes to stderr; `--json FILE` writes the same document to the file.
    @Test func pingAndExecWriteJSONWithTheirSchemaVersion() throws {
        let ping = try labctl(["ping", "-i", inventoryPath, "--json", "-"])
        #expect(ping.status == 0, "\(ping.stderr)\(ping.stdout)")
        let pinged = try document(ping.stdout)
        #expect(pinged["schemaVersion"] as? Int == 1)
        let hosts = try #require(pinged["hosts"] as? [[String: Any]])
        #expect(hosts.map { $0["host"] as? String } == ["web1", "web2"])
        #expect(hosts.allSatisfy { $0["status"] as? String == "ok" && $0["loginUser"] as? String == "root" }, "\(hosts)")
        #expect(ping.stderr.contains("2 hosts answered."), "\(ping.stderr)")

        let exec = try labctl(["exec", "-i", inventoryPath, "all", "--json", "-", "--", "echo hello; exit 3"])
        #expect(exec.status == 2, "\(exec.stderr)\(exec.stdout)")
        let ran = try document(exec.stdout)
        #expect(ran["schemaVersion"] as? Int == 1)
        #expect(ran["command"] as? String == "echo hello; exit 3")
        let outcomes = try #require(ran["hosts"] as? [[String: Any]])
        #expect(outcomes.count == 2)
        #expect(outcomes.allSatisfy { $0["stdout"] as? String == "hello\n" && $0["exitStatus"] as? Int == 3 && $0["status"] as? String == "failed" }, "\(outcomes)")
        #expect(exec.stderr.contains("web1 | hello"), "\(exec.stderr)")

        let file = folder.file("ping.json")
        let toFile = try labctl(["ping", "-i", inventoryPath, "web1", "--json", file])
        #expect(toFile.status == 0)
        #expect(toFile.stdout.contains("1 host answered."))
        let written = try document(String(contentsOfFile: file, encoding: .utf8))
        #expect(written["schemaVersion"] as? Int == 1 && (written["hosts"] as? [Any])?.count == 1)
    }

    /// The playbook verbs (run, provision, up; deploy and rollback share their option) and
    /// verify: one JSON document each, schemaVersion 1; up's has a part per stage that ran.
    @Test func playbookVerbsAndVerifyWriteJSONWithTheirSchemaVersion() throws {
        let playbooks = folder.file("playbooks")
        try FileManager.default.createDirectory(atPath: playbooks, withIntermediateDirectories: true)
        for name in ["provision", "deploy", "rollback"] {
            try "- { name: \(name) step, hosts: all, command: 'true' }\n".write(toFile: "\(playbooks)/\(name).yml", atomically: true, encoding: .utf8)
        }
        let common = ["-i", inventoryPath, "--playbooks", playbooks, "--state-dir", folder.file("state")]
        let run = try labctl(["run"] + common + ["\(playbooks)/deploy.yml", "--json", "-"])
        #expect(run.status == 0, "\(run.stderr)\(run.stdout)")
        let report = try document(run.stdout)
        #expect(report["schemaVersion"] as? Int == 1)
        #expect((report["hosts"] as? [Any])?.count == 2)
        #expect(run.stderr.contains("RECAP"), "\(run.stderr)")

        let provision = try labctl(["provision"] + common + ["--json", "-"])
        #expect(provision.status == 0, "\(provision.stderr)")
        #expect(try document(provision.stdout)["schemaVersion"] as? Int == 1)

        let up = try labctl(["up"] + common + ["--no-verify", "--json", "-"])
        #expect(up.status == 0, "\(up.stderr)\(up.stdout)")
        let whole = try document(up.stdout)
        #expect(whole["schemaVersion"] as? Int == 1)
        #expect((whole["provision"] as? [String: Any])?["schemaVersion"] as? Int == 1)
        #expect(((whole["deploy"] as? [String: Any])?["playbook"] as? String)?.hasSuffix("deploy.yml") == true, "\(whole)")
        #expect(whole["verify"] == nil)
        let upFile = folder.file("up.json")
        let upToFile = try labctl(["up"] + common + ["--no-verify", "--json", upFile])
        #expect(upToFile.status == 0 && upToFile.stdout.contains("RECAP"))
        #expect(try document(String(contentsOfFile: upFile, encoding: .utf8))["deploy"] != nil)

        // verify on hosts that run no app nor nginx: checks fail (2), the report is still one document.
        let verifyInventory = folder.file("verify.json")
        try """
            { "name": "cli-verify", "domain": "cli.lab", "ssh": { "known_hosts": "known_hosts" },
              "hosts": [
                { "name": "web1", "address": "127.0.0.1", "port": \(servers[0].port), "key": "\(servers[0].clientKeyPath)", "roles": ["proxy"] },
                { "name": "web2", "address": "127.0.0.1", "port": \(servers[1].port), "key": "\(servers[1].clientKeyPath)", "roles": ["app"] } ],
              "app": { "name": "cliapp", "port": 1, "source": { "path": "." } },
              "nginx": { "listen": 2 } }
            """.write(toFile: verifyInventory, atomically: true, encoding: .utf8)
        let verify = try labctl(["verify", "-i", verifyInventory, "--requests", "10", "--json", "-"])
        #expect(verify.status == 2, "\(verify.stderr)\(verify.stdout)")
        let verified = try document(verify.stdout)
        #expect(verified["schemaVersion"] as? Int == 1)
        #expect(((verified["checks"] as? [Any])?.count ?? 0) > 0)
        #expect(verify.stderr.contains("fail"), "\(verify.stderr)")
    }

    /// -vvv: before connecting, how labctl connects to each host; then each command line as sent.
    @Test func tripleVerboseShowsHowEachHostIsReached() throws {
        let result = try labctl(["ping", "-i", inventoryPath, "web1", "-vvv"])
        #expect(result.status == 0, "\(result.stderr)\(result.stdout)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let connecting = try #require(lines.first { $0.hasPrefix("web1: connecting to ") }, "\(result.stdout)")
        #expect(connecting.hasPrefix("web1: connecting to 127.0.0.1 port \(servers[0].port) as root; login: key \(servers[0].clientKeyPath); known_hosts /"), "\(connecting)")
        #expect(connecting.contains("known_hosts; host key policy strict; connect timeout 10 s; jump hosts: none; SSH config"), "\(connecting)")
        // Each command line as sent, after the connection line.
        let command = try #require(lines.firstIndex { $0.hasPrefix("web1: $ ") && $0.contains("uname -sr; id -un") }, "\(result.stdout)")
        #expect(lines.firstIndex(of: connecting)! < command)
        // -vv does not show it.
        let less = try labctl(["ping", "-i", inventoryPath, "web1", "-vv"])
        #expect(!less.stdout.contains("connecting to"), "\(less.stdout)")
    }


    @Test func badInputExitsFourAndSaysWhere() throws {
        let unknown = try labctl(["exec", "-i", inventoryPath, "db", "--", "true"])
        #expect(unknown.status == 4)
        #expect(unknown.stderr.contains("db"))
        try #"{ "hosts": [ { "name": "x", "address": "300.1.1.1", "roles": ["web"] } ] }"#
            .write(toFile: inventoryPath, atomically: true, encoding: .utf8)
        let bad = try labctl(["ping", "-i", inventoryPath])
        #expect(bad.status == 4)
        #expect(bad.stderr.contains("hosts[0].address"))
        let missing = try labctl(["ping", "-i", folder.file("nope.json")])
        #expect(missing.status == 4)
        #expect(missing.stderr.contains("nope.json"))
    }
}

/// `labctl hosts` on a file of the test's own.
@Suite struct HostsCommandTests {
    @Test func applyThenRemoveRestoresTheFile() throws {
        let folder = try TemporaryDirectory(prefix: "labctl-hosts-cli")
        defer { folder.remove() }
        let inventory = folder.file("inventory.json")
        try #"{ "name": "demo", "domain": "demo.lab", "hosts": [ { "name": "proxy", "address": "198.18.9.10", "roles": ["proxy"] } ] }"#
            .write(toFile: inventory, atomically: true, encoding: .utf8)
        let hosts = folder.file("hosts")
        let original = "127.0.0.1\tlocalhost\n::1 ip6-localhost\n# no newline at the end"
        try original.write(toFile: hosts, atomically: true, encoding: .utf8)

        let printed = try runLocal([labctlExecutablePath, "hosts", "-i", inventory])
        #expect(printed.stdout == "198.18.9.10 demo.lab\n")
        try runLocal([labctlExecutablePath, "hosts", "-i", inventory, "--apply", "--file", hosts])
        let applied = try String(contentsOfFile: hosts, encoding: .utf8)
        #expect(applied.contains("\n198.18.9.10 demo.lab\n"))
        #expect(try String(contentsOfFile: hosts + ".labctl-backup", encoding: .utf8) == original)
        let again = try runLocal([labctlExecutablePath, "hosts", "-i", inventory, "--apply", "--file", hosts])
        #expect(again.stdout.contains("already up to date"))
        try runLocal([labctlExecutablePath, "hosts", "-i", inventory, "--remove", "--file", hosts])
        #expect(try Data(contentsOf: URL(fileURLWithPath: hosts)) == Data(original.utf8))
    }
}
