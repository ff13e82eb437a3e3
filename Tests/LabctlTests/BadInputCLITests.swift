import Foundation
import TestSupport
import Testing

/// Issue 12 through the built labctl: bad input of every kind exits 4 with one sentence that
/// names the file, field, option or place, before any host is touched; and the exit-code
/// table (0, 2, 3, 4, 5, 130) holds verb by verb.
@Suite final class BadInputCLITests {
    let folder: TemporaryDirectory
    /// An inventory whose hosts listen nowhere (port 1 on loopback): nothing here connects.
    let inventory: String

    init() throws {
        folder = try TemporaryDirectory(prefix: "labctl-badinput")
        inventory = folder.file("inventory.json")
        try FileManager.default.createDirectory(atPath: folder.file("app"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.file("playbooks/templates"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.file("a-folder.yml"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.file("reports"), withIntermediateDirectories: true)
        try write("inventory.json", Self.inventoryText(app: #", "app": { "source": { "path": "app" } }"#))
        try write("no-app.json", Self.inventoryText(app: ""))
        try write("moved-app.json", Self.inventoryText(app: #", "app": { "source": { "path": "../elsewhere/app" } }"#))
        try write("no-domain.json", #"{ "name": "x", "hosts": [ { "name": "a", "address": "127.0.0.1", "roles": ["app"] } ] }"#)
        try write("commented.json", "{\n  // my lab\n  \"hosts\": []\n}\n")
        try write("trailing.json", "{ \"hosts\": [\n  { \"name\": \"a\", \"address\": \"127.0.0.1\" },\n] }\n")
        try write("lab-port.json", #"{ "name": "x", "defaults": { "key": "id" }, "hosts": [ { "name": "a", "address": "198.18.42.2", "port": 2222, "roles": ["app"] } ] }"#)
        try write("lab-loopback.json", #"{ "name": "x", "defaults": { "key": "id" }, "lab": { "subnet": "127.0.0.0/24" }, "hosts": [ { "name": "a", "address": "127.0.0.10", "roles": ["app"] } ] }"#)
        FileManager.default.createFile(atPath: folder.file("latin1.json"), contents: Data("{ \"name\": \"caf".utf8 + [0xE9] + Data("\" }".utf8)))
        try write("playbooks/site.yml", "- { name: one, hosts: all, command: 'true', tags: [setup] }\n- { name: two, hosts: all, command: 'true', tags: [app] }\n")
        try write("playbooks/dupsteps.yml", "- { name: one, hosts: all, command: 'true' }\n- { name: one, hosts: all, command: 'false' }\n")
        try write("playbooks/duphandlers.yml", "steps:\n  - { name: s, hosts: all, command: 'true', notify: h }\nhandlers:\n  - { name: h, command: 'true' }\n  - { name: h, command: 'false' }\n")
        try write("playbooks/escape.yml", "- name: read a host file\n  hosts: all\n  file: { path: /tmp/x, template: ../../../../etc/hostname }\n")
        try write("playbooks/transform.yml", "- name: a transform\n  hosts: all\n  file: { path: /tmp/x, content: \"{{nosuch(host.name)}}\" }\n")
        try write("playbooks/transform-ok.yml", "- name: a transform\n  hosts: all\n  file: { path: /tmp/x, content: \"{{lowercased(host.name)}}\" }\n")
        try write("playbooks/timeout.yml", "- name: forever\n  hosts: all\n  command: { run: 'true', timeout: 9223372036854775807 }\n")
        try write("playbooks/waitfor.yml", "- name: wait\n  hosts: all\n  wait_for: { port: 80, timeout: 99999999 }\n")
        try write("playbooks/uses-app.yml", "- name: upload\n  hosts: app\n  upload: { src: \"{{app.source.path}}\", dest: /srv/app }\n")
        try write("here.yml", "- { name: one, hosts: all, command: 'true' }\n")
        FileManager.default.createFile(atPath: folder.file("binary.yml"), contents: Data([0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00]))
        try write("deep.yml", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n")
    }

    deinit { folder.remove() }

    static func inventoryText(app: String) -> String {
        """
        { "name": "bad-input", "domain": "w.lab", "ssh": { "connect_timeout": 2 },
          "defaults": { "key": "no-such-key" },
          "hosts": [
            { "name": "proxy", "address": "127.0.0.1", "port": 1, "roles": ["proxy"] },
            { "name": "app1", "address": "127.0.0.1", "port": 2, "roles": ["app"] },
            { "name": "app2", "address": "127.0.0.1", "port": 3, "roles": ["app"] }
          ]\(app) }
        """
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: folder.file(name), atomically: true, encoding: .utf8)
    }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        // From the fixture's folder, so `run NAME` and relative paths behave as for a user.
        try runLocal(["sh", "-c", "cd \"$0\" && exec \"$@\"", folder.path, labctlExecutablePath] + arguments, check: false)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var arguments: [String]
        var status: Int32
        /// Each must appear in stderr (or stdout, for verbs that print a table).
        var patterns: [String]
        var testDescription: String { arguments.joined(separator: " ") }
        init(_ arguments: [String], _ status: Int32, _ patterns: String...) {
            self.arguments = arguments
            self.status = status
            self.patterns = patterns
        }
    }

    static let cases: [Case] = [
        // Numbers from the command line, range-checked where they are parsed.
        Case(["exec", "all", "--timeout", "9223372036854775807", "--", "true"], 4, "--timeout must be between 1 and 86400 seconds"),
        Case(["exec", "all", "--timeout", "99999999999999999999", "--", "true"], 4, "--timeout"),
        Case(["exec", "all", "--timeout", "0", "--", "true"], 4, "--timeout must be between 1 and 86400"),
        Case(["exec", "all", "--timeout", "-5", "--", "true"], 4, "--timeout"),
        Case(["exec", "all", "--timeout", "86401", "--", "true"], 4, "got 86401"),
        Case(["exec", "all", "--timeout", "ten", "--", "true"], 4, "--timeout"),
        Case(["verify", "--load", "nan"], 4, "--load must be a rate between 0.1 and 1000"),
        Case(["verify", "--load", "inf"], 4, "--load must be a rate"),
        Case(["verify", "--load", "-inf"], 4, "--load"),
        Case(["verify", "--load", "1e300"], 4, "--load must be a rate"),
        Case(["verify", "--load", "0"], 4, "--load must be a rate"),
        Case(["verify", "--load", "-3"], 4, "--load"),
        Case(["verify", "--load", "1001"], 4, "--load must be a rate"),
        Case(["verify", "--load", "fast"], 4, "--load"),
        Case(["verify", "--requests", "1"], 4, "--requests must be between 10 and 10000"),
        Case(["verify", "--requests", "0"], 4, "--requests must be between 10"),
        Case(["verify", "--requests", "-1"], 4, "--requests"),
        Case(["verify", "--requests", "10001"], 4, "--requests must be between"),
        Case(["up", "--requests", "2"], 4, "--requests must be between"),
        Case(["up", "--load", "nan"], 4, "--load must be a rate"),
        Case(["run", "site", "--forks", "0"], 4, "--forks must be between 1 and 1000"),
        Case(["run", "site", "--forks", "100000"], 4, "--forks must be between 1 and 1000"),
        // Selections that match nothing.
        Case(["run", "site", "--tags", "nomatch"], 4, "--tags nomatch: no step of", "site.yml has this tag", "its tags: app, setup"),
        Case(["run", "site", "--tags", ""], 4, "--tags is empty"),
        Case(["run", "site", "--tags", ","], 4, "--tags is empty"),
        Case(["run", "site", "--tags", "setup,nomatch"], 4, "--tags nomatch"),
        Case(["run", "site", "--limit", ""], 4, "--limit is empty"),
        Case(["run", "site", "--limit", "db"], 4, "--limit: 'db' is not a host or role", "proxy, app1, app2"),
        Case(["run", "site", "--start-at", ""], 4, "--start-at is empty"),
        Case(["provision", "--limit", ""], 4, "--limit is empty"),
        Case(["deploy", "--tags", ""], 4, "--tags is empty"),
        Case(["run", "site", "--skip-tags", "nomatch"], 4, "--skip-tags nomatch: no step of", "its tags: app, setup"),
        Case(["run", "site", "--skip-tags", ""], 4, "--skip-tags is empty"),
        Case(["run", "site", "-t", "nomatch", "-C", "-D"], 4, "--tags nomatch: no step of"),
        Case(["run", "site", "-l", "db"], 4, "--limit: 'db' is not a host or role"),
        Case(["run", "site", "-f", "0"], 4, "--forks must be between 1 and 1000"),
        Case(["ping", "--forks", "0"], 4, "--forks must be between 1 and 1000"),
        Case(["exec", "all", "-f", "2000", "--", "true"], 4, "--forks must be between 1 and 1000"),
        Case(["exec", "db", "--", "true"], 4, "'db' is not a host or role"),
        Case(["exec", "", "--", "true"], 4, "no target given"),
        Case(["ping", ","], 4, "no target given"),
        // Help and argument errors: 4, as the table says, not ArgumentParser's 64.
        Case(["help", "nosuchverb"], 4, "'nosuchverb' is not a labctl verb"),
        Case(["help", "exce"], 4, "did you mean 'exec'?"),
        Case(["help", "lab", "nosuch"], 4, "'nosuch' is not a labctl verb"),
        Case(["nosuchverb"], 4, "nosuchverb"),
        Case(["ping", "--bogus"], 4, "--bogus"),
        Case(["exec"], 4, "target"),
        Case(["exec", "all"], 4, "Give the command after `--`"),
        Case(["run"], 4, "playbook"),
        Case(["ping", "--host-key-checking", "sometimes"], 4, "sometimes"),
        Case(["hosts", "--apply", "--remove"], 4, "give one"),
        // Output files checked before running.
        Case(["run", "site", "--json", "/nonexistent-folder/x.json"], 4, "--json /nonexistent-folder/x.json: the folder /nonexistent-folder does not exist"),
        Case(["run", "site", "--json", "reports"], 4, "--json reports is a folder"),
        Case(["run", "site", "--json", ""], 4, "--json needs a file name"),
        Case(["up", "--json", "/nonexistent-folder/x.json"], 4, "the folder /nonexistent-folder does not exist"),
        // --json is one option on every verb: a path that cannot be written is refused before anything runs.
        Case(["ping", "--json", "/nonexistent-folder/x.json"], 4, "--json /nonexistent-folder/x.json: the folder /nonexistent-folder does not exist"),
        Case(["exec", "all", "--json", "reports", "--", "true"], 4, "--json reports is a folder"),
        Case(["verify", "--json", "/nonexistent-folder/x.json"], 4, "--json /nonexistent-folder/x.json: the folder"),
        Case(["verify", "--json"], 4, "--json"),
        Case(["provision", "--json", "reports"], 4, "--json reports is a folder"),
        Case(["deploy", "--json", ""], 4, "--json needs a file name"),
        Case(["rollback", "--json", "/nonexistent-folder/x.json"], 4, "the folder /nonexistent-folder does not exist"),
        Case(["lab", "status", "--json", "/nonexistent-folder/x.json"], 4, "the folder /nonexistent-folder does not exist"),
        Case(["verify", "--junit", "/nonexistent-folder/v.xml"], 4, "--junit /nonexistent-folder/v.xml: the folder /nonexistent-folder does not exist"),
        Case(["verify", "--junit", "reports"], 4, "--junit reports is a folder"),
        Case(["up", "--junit", "/nonexistent-folder/v.xml"], 4, "--junit"),
        // Inventories.
        Case(["ping", "-i", ""], 4, "the path is empty; pass -i PATH"),
        Case(["ping", "-i", "nope.json"], 4, "nope.json: no such file"),
        Case(["ping", "-i", "reports"], 4, "reports: is a folder, not an inventory file"),
        Case(["ping", "-i", "commented.json"], 4, "commented.json: invalid JSON at line 2, column 3", "JSON has no comments"),
        Case(["ping", "-i", "trailing.json"], 4, "trailing.json: invalid JSON at line 2, column 42", "trailing comma"),
        Case(["ping", "-i", "latin1.json"], 4, "latin1.json: invalid JSON at line 1, column 15", "not UTF-8"),
        Case(["hosts", "-i", "commented.json"], 4, "JSON has no comments"),
        Case(["hosts", "-i", "no-domain.json"], 4, "no-domain.json: the inventory needs a `domain`"),
        Case(["verify", "-i", "no-app.json"], 4, "no-app.json: verify needs an `app` section"),
        Case(["up", "-i", "no-app.json"], 4, "verify needs an `app` section"),
        Case(["deploy", "-i", "moved-app.json", "--playbooks", "playbooks-none"], 4, "playbooks-none"),
        Case(["run", "uses-app", "-i", "moved-app.json"], 4, "app.source.path: the folder", "relative to the inventory's folder"),
        Case(["lab", "up", "-i", "lab-port.json"], 4, "port 22"),
        Case(["lab", "up", "-i", "lab-loopback.json"], 4, "the lab subnet 127.0.0.0/24 is in 127.0.0.0/8, the loopback range"),
        // Playbooks.
        Case(["run", "nosuch"], 4, "nosuch: no playbook of that name in", "(playbooks there:", "site"),
        Case(["run", "here"], 4, "./here.yml exists here: write ./here.yml to run that file"),
        Case(["run", "here.yml"], 4, "./here.yml exists here"),
        Case(["run", "./a-folder.yml"], 4, "a-folder.yml:1:1: is a folder, not a playbook"),
        Case(["run", "./binary.yml"], 4, "binary.yml:1:8: the file is not UTF-8 text"),
        Case(["run", "./deep.yml"], 4, "deep.yml:1:65: the YAML is nested more than 64 levels deep"),
        Case(["run", "./nope.yml"], 4, "nope.yml:1:1: no such playbook file"),
        Case(["run", "dupsteps"], 4, "dupsteps.yml:2:3: two steps are named 'one'"),
        Case(["run", "duphandlers"], 4, "duphandlers.yml:5:5: two handlers are named 'h'"),
        Case(["run", "escape"], 4, "escape.yml:3:", "outside the playbook's templates/ folder"),
        Case(["run", "transform"], 4, "transform.yml:3:", "'nosuch' is not a template transform", "lowercased"),
        Case(["run", "timeout"], 4, "timeout.yml:3:36: 'timeout' of command must be between 1 and 86400 seconds"),
        Case(["run", "waitfor"], 4, "waitfor.yml:3:34: 'timeout' of wait_for must be between 1 and 86400"),
    ]

    @Test(arguments: cases)
    func badInputExitsFourSayingWhere(_ testCase: Case) throws {
        let result = try labctl(testCase.arguments)
        let output = result.stderr + result.stdout
        #expect(result.status == testCase.status, "\(testCase.arguments): \(output)")
        for pattern in testCase.patterns {
            #expect(output.contains(pattern), "\(testCase.arguments): \(output)")
        }
        // Refused before any host was tried: nothing connected, nothing ran.
        #expect(!output.contains("UNREACHABLE"), "\(output)")
        #expect(!output.contains("PLAY "), "\(output)")
        for foreign in ["Error Domain", "NSCocoaErrorDomain", "couldn’t be", "Swift.", "(reasons:", "keyType:"] {
            #expect(!output.contains(foreign), "\(testCase.arguments): \(output)")
        }
    }

    /// LABCTL_INVENTORY names the inventory when -i is not given; -i still wins.
    @Test func theInventoryCanComeFromTheEnvironment() throws {
        let missing = try runLocal([labctlExecutablePath, "ping"], environment: ["LABCTL_INVENTORY": "/nonexistent/from-env.json"], check: false)
        #expect(missing.status == 4 && (missing.stderr + missing.stdout).contains("/nonexistent/from-env.json"), "\(missing.stderr)")
        let given = try runLocal([labctlExecutablePath, "ping", "-i", "/nonexistent/given.json"], environment: ["LABCTL_INVENTORY": "/nonexistent/from-env.json"], check: false)
        #expect((given.stderr + given.stdout).contains("/nonexistent/given.json"), "\(given.stderr)")
    }

    @Test func aKnownTransformIsAccepted() throws {
        // Passes validation, then finds the hosts unreachable (3): the transform was not refused.
        let result = try labctl(["run", "transform-ok"])
        #expect(result.status == 3, "\(result.stderr)\(result.stdout)")
    }

    @Test func helpPrintsTheExitCodeTable() throws {
        let result = try labctl(["--help"])
        #expect(result.status == 0)
        for line in ["0    success", "2    a command, step or check failed on a host", "3    a host was unreachable",
                     "4    bad input", "5    this machine failed", "130  interrupted (Ctrl-C)"] {
            #expect(result.stdout.contains(line), "\(result.stdout)")
        }
        #expect(try labctl(["help", "exec"]).status == 0)
        #expect(try labctl(["help", "lab", "up"]).status == 0)
    }

    /// This machine failing the lab: 5. A subnet that one of this machine's own interfaces
    /// uses cannot be the lab's bridge (the lab must not take over that network).
    @Test func aLabThisMachineCannotRunExitsFive() throws {
        guard geteuid() == 0 else { return }
        let addresses = try runLocal(["ip", "-4", "-o", "addr", "show"]).stdout.split(separator: "\n")
            .compactMap { line -> String? in
                let fields = line.split(separator: " ")
                guard fields.count > 3, !fields[1].hasPrefix("lo"), !fields[1].hasPrefix("lab") else { return nil }
                return String(fields[3])
            }
        guard let address = addresses.first(where: { $0.hasSuffix("/24") }) else {
            print("skipped: no /24 interface on this machine to collide with")
            return
        }
        let parts = address.split(separator: "/")[0].split(separator: ".")
        let subnet = "\(parts[0]).\(parts[1]).\(parts[2]).0/24"
        try write("lab-collides.json", #"{ "name": "collide", "defaults": { "key": "id" }, "lab": { "subnet": ""# + subnet
            + #"", "bridge": "labcol0" }, "hosts": [ { "name": "a", "address": ""# + "\(parts[0]).\(parts[1]).\(parts[2]).250" + #"", "roles": ["app"] } ] }"#)
        let result = try labctl(["lab", "up", "-i", folder.file("lab-collides.json")])
        #expect(result.status == 5, "\(result.stdout)\(result.stderr)")
        #expect((result.stdout + result.stderr).contains(subnet), "\(result.stdout)\(result.stderr)")
        #expect(!(try runLocal(["ip", "link"]).stdout.contains("labcol0")))

        // ssh into a host of a lab that is not up: said at once, not after TCP's timeout.
        try write("lab-down.json", #"{ "name": "notup", "defaults": { "key": "id" }, "lab": { "subnet": "198.18.91.0/24" }, "hosts": [ { "name": "a", "address": "198.18.91.10", "roles": ["app"] } ] }"#)
        let ssh = try labctl(["lab", "ssh", "-i", folder.file("lab-down.json"), "a", "--", "true"])
        #expect(ssh.status == 5, "\(ssh.stdout)\(ssh.stderr)")
        #expect((ssh.stdout + ssh.stderr).contains("a is not running in lab notup; start the lab with `labctl lab up -i "), "\(ssh.stdout)\(ssh.stderr)")
    }

    /// Unreachable hosts: 3, for every verb that connects.
    @Test func unreachableHostsExitThreeVerbByVerb() throws {
        for arguments in [["ping"], ["exec", "all", "--", "true"], ["run", "site"], ["deploy", "--playbooks", "\(packageRootPath)/playbooks"],
                          ["provision", "--playbooks", "\(packageRootPath)/playbooks"]] {
            let result = try labctl(arguments)
            #expect(result.status == 3, "\(arguments): \(result.stderr)\(result.stdout)")
        }
    }

    /// A check that fails on the hosts (nothing answers HTTP): verify exits 2, as documented.
    @Test func aFailedVerifyCheckExitsTwo() throws {
        let result = try labctl(["verify"])
        #expect(result.status == 2, "\(result.stderr)\(result.stdout)")
    }

    /// This machine failing (a hosts file that cannot be written): 5.
    @Test func aHostsFileThatCannotBeWrittenExitsFive() throws {
        let result = try labctl(["hosts", "--apply", "--file", "/nonexistent-folder/hosts"])
        #expect(result.status == 5, "\(result.stderr)\(result.stdout)")
        #expect(result.stderr.contains("/nonexistent-folder/hosts: "), "\(result.stderr)")
        #expect(!result.stderr.contains("couldn’t"), "\(result.stderr)")
    }

    var packageRootPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}

/// The exit-code table on real hosts (private sshd instances): 0, 2 and 130 verb by verb.
@Suite final class ExitCodeTableTests {
    let server: TestSSHServer
    let folder: TemporaryDirectory
    let inventory: String

    init() throws {
        server = try TestSSHServer()
        folder = try TemporaryDirectory(prefix: "labctl-exitcodes")
        try (server.hostPublicKeyLine + "\n").write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        inventory = folder.file("inventory.json")
        try """
            { "name": "exit-codes", "ssh": { "known_hosts": "known_hosts" },
              "hosts": [ { "name": "web1", "address": "127.0.0.1", "port": \(server.port), "key": "\(server.clientKeyPath)", "roles": ["web"] } ] }
            """.write(toFile: inventory, atomically: true, encoding: .utf8)
        try "- { name: fine, hosts: all, command: 'true' }\n".write(toFile: folder.file("ok.yml"), atomically: true, encoding: .utf8)
        try "- { name: broken, hosts: all, command: 'exit 3' }\n".write(toFile: folder.file("fail.yml"), atomically: true, encoding: .utf8)
        try "- { name: slow, hosts: all, command: 'sleep 2' }\n- { name: after, hosts: all, command: 'true' }\n"
            .write(toFile: folder.file("slow.yml"), atomically: true, encoding: .utf8)
    }

    deinit { folder.remove() }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments, check: false)
    }

    @Test func successAndHostFailuresVerbByVerb() throws {
        let cases: [([String], Int32)] = [
            (["ping", "-i", inventory], 0),
            (["exec", "-i", inventory, "all", "--", "true"], 0),
            (["exec", "-i", inventory, "all", "--timeout", "86400", "--", "true"], 0),
            (["exec", "-i", inventory, "all", "--", "exit 9"], 2),
            (["run", "-i", inventory, folder.file("ok.yml"), "--state-dir", folder.file("state")], 0),
            (["run", "-i", inventory, folder.file("fail.yml"), "--state-dir", folder.file("state")], 2),
            (["run", "-i", inventory, folder.file("ok.yml"), "--json", folder.file("report.json"), "--state-dir", folder.file("state")], 0),
        ]
        for (arguments, status) in cases {
            let result = try labctl(arguments)
            #expect(result.status == status, "\(arguments): \(result.stderr)\(result.stdout)")
        }
        #expect(FileManager.default.fileExists(atPath: folder.file("report.json")))
    }

    /// A known_hosts file labctl cannot read is named as such, not as "not in known_hosts".
    @Test func anUnreadableKnownHostsIsNamedAndIsBadInput() throws {
        try FileManager.default.removeItem(atPath: folder.file("known_hosts"))
        try FileManager.default.createDirectory(atPath: folder.file("known_hosts"), withIntermediateDirectories: true)
        let result = try labctl(["ping", "-i", inventory, "-v"])
        #expect(result.status == 4, "\(result.stderr)\(result.stdout)")
        #expect(result.stdout.contains("cannot read known_hosts: it is a directory"), "\(result.stdout)")
        #expect(!result.stdout.contains("is not in"))
        #expect(!result.stdout.contains("localFile("), "\(result.stdout)")
        // The same for a playbook verb: 4, the file named.
        let run = try labctl(["run", "-i", inventory, folder.file("ok.yml"), "--state-dir", folder.file("state")])
        #expect(run.status == 4, "\(run.stderr)\(run.stdout)")
        #expect(run.stdout.contains("cannot read known_hosts: it is a directory"), "\(run.stdout)")
    }

    /// -v shows the error readably, never a Swift enum dump.
    @Test func verboseErrorsAreSentences() throws {
        try "".write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        let result = try labctl(["ping", "-i", inventory, "-v"])
        #expect(result.status == 3)
        #expect(result.stdout.contains("is not in"), "\(result.stdout)")
        #expect(result.stdout.contains("(while checking the host key)"), "\(result.stdout)")
        for dump in ["hostKeyUnknown(", "keyType:", "warnings: ["] { #expect(!result.stdout.contains(dump), "\(result.stdout)") }
    }

    /// Ctrl-C in the middle of a playbook: 130, as the table says (it was 2).
    @Test func ctrlCDuringAPlaybookExitsOneThirty() throws {
        let log = folder.file("interrupted.log")
        let pid = try spawnBackground([labctlExecutablePath, "run", "-v", "-i", inventory, folder.file("slow.yml"), "--state-dir", folder.file("state")], logPath: log)
        var started = false
        for _ in 0..<600 where !started {
            started = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("… slow")
            if !started { usleep(50_000) }
        }
        #expect(started, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        kill(pid, SIGINT)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 130, "\(output)")
        #expect(output.contains("interrupted"), "\(output)")
    }
}
