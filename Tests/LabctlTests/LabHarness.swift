import Foundation
import LabEngine
import TestSupport
import Testing

/// A local lab of a test's own (proxy, app1 and app2 on its own subnet and bridge) seen from
/// this machine: labctl run with a deadline, the hosts' files, processes and namespaces, the
/// app's revision as the domain serves it. Shared by the suites that break or roll the lab.
struct LabHarness {
    static let repository = WeekThreeLabTests.repository
    static let hosts = ["proxy", "app1", "app2"]

    let name: String
    let prefix: String
    let bridge: String
    let folder: TemporaryDirectory
    var inventory: String { folder.file("inventory.json") }
    var playbooks: String { Self.repository.appendingPathComponent("playbooks").path }
    var appCopy: String { folder.file("app") }

    init(name: String, prefix: String, bridge: String) throws {
        self.name = name
        self.prefix = prefix
        self.bridge = bridge
        folder = try TemporaryDirectory(prefix: "labctl-\(name)")
    }

    /// The lab up, provisioned and deployed with revision r0 of the stand-in app.
    func upAndDeployed() throws {
        try runLocal(["cp", "-r", Self.repository.appendingPathComponent("app/wayshub-standin").path, appCopy])
        try writeApp(revision: "r0")
        try writeInventory(app2Weight: 1)
        down()
        let up = try labctl(["lab", "up", "-i", inventory])
        try #require(up.status == 0, "lab up: \(up.stdout)")
        let provision = try labctl(["provision", "-i", inventory, "--playbooks", playbooks])
        try #require(provision.status == 0, "provision: \(provision.stdout)")
        let first = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("first-deploy.json")])
        try #require(first.status == 0, "deploy: \(first.stdout)")
    }

    func down() {
        _ = try? runLocal([labctlExecutablePath, "lab", "down", "-i", inventory], check: false)
    }

    func writeInventory(app2Weight: Int) throws {
        try """
            { "name": "\(name)", "domain": "wayshub.test",
              "defaults": { "key": "id_ed25519" }, "ssh": { "known_hosts": "known_hosts" },
              "lab": { "subnet": "\(prefix).0/24", "bridge": "\(bridge)" },
              "hosts": [
                { "name": "proxy", "address": "\(prefix).10", "roles": ["proxy"] },
                { "name": "app1", "address": "\(prefix).11", "roles": ["app"], "user": "ubuntu", "become": true },
                { "name": "app2", "address": "\(prefix).12", "roles": ["app"], "upstream": { "weight": \(app2Weight) } }
              ],
              "app": { "directory": "/opt/wayshub", "source": { "path": "\(appCopy)" }, "node": { "install": "apt" } },
              "nginx": { "dir": "dumbways" }
            }
            """.write(toFile: inventory, atomically: true, encoding: .utf8)
    }

    /// The app's copy serves `revision` in its page, so a test can tell which code is live.
    /// `broken`: the revision exits at once when started, as a bad release would.
    func writeApp(revision: String, broken: Bool = false) throws {
        let original = try String(contentsOf: LabHarness.repository.appendingPathComponent("app/wayshub-standin/server.js"), encoding: .utf8)
        var marked = original.replacingOccurrences(of: "<p>Watch, share and upload videos.</p>", with: "<p>Watch, share and upload videos.</p><!-- revision \(revision) -->")
        if broken { marked = marked.replacingOccurrences(of: "'use strict';\n", with: "'use strict';\nconsole.error('broken release'); process.exit(1);\n") }
        try marked.write(toFile: appCopy + "/server.js", atomically: true, encoding: .utf8)
    }

    var stateDirectory: String { "/var/lib/labctl/labs/\(name)/hosts" }
    func root(_ host: String) -> String { "\(stateDirectory)/\(host)/merged" }

    /// Every process of a host (its nspawn cgroup tree in the named systemd hierarchy).
    func processes(_ host: String) -> [pid_t] {
        let top = "/sys/fs/cgroup/systemd/labctl/\(name)/\(host)"
        guard let walker = FileManager.default.enumerator(atPath: top) else { return [] }
        var pids: [pid_t] = []
        let files = ["cgroup.procs"] + walker.compactMap { ($0 as? String).flatMap { $0.hasSuffix("cgroup.procs") ? $0 : nil } }
        for file in files {
            let text = (try? String(contentsOfFile: top + "/" + file, encoding: .utf8)) ?? ""
            pids += text.split(separator: "\n").compactMap { pid_t($0) }
        }
        return pids
    }

    func command(_ pid: pid_t) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The host's PID 1 (its systemd), for nsenter.
    func initProcess(_ host: String) throws -> pid_t {
        try #require(processes(host).first { pid in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last == "1"
        }, "no PID 1 found for \(host)")
    }

    /// A command inside the host's namespaces, as root, without SSH.
    @discardableResult
    func inside(_ host: String, _ script: String, check: Bool = true) throws -> LocalResult {
        try runLocal(["nsenter", "-t", String(try initProcess(host)), "-m", "-u", "-i", "-n", "-p", "--", "sh", "-c", "set -e\n" + script], check: check)
    }

    /// labctl, stopped (and the test failed) if it runs past `seconds`: a hang is a finding too.
    func labctl(_ arguments: [String], seconds: Int = 600, environment: [String: String] = [:]) throws -> LocalResult {
        let log = folder.file("labctl-\(UUID().uuidString.prefix(6)).log")
        let pid = try spawnBackground([labctlExecutablePath] + arguments, logPath: log, environment: environment)
        let status = try wait(pid, seconds: seconds)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return LocalResult(status: status, stdout: output, stderr: "")
    }

    func wait(_ pid: pid_t, seconds: Int) throws -> Int32 {
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if Date() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                Issue.record("labctl ran past \(seconds) s and was killed")
                break
            }
            usleep(50_000)
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    func report(_ path: String) throws -> RunReport {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// What the domain serves through the proxy: the revision in each page, by the server that sent it.
    func servedRevisions(requests: Int = 8) -> [String: Set<String>] {
        var seen: [String: Set<String>] = [:]
        for _ in 0..<requests {
            guard let result = try? runLocal(["curl", "-sS", "-i", "--max-time", "5", "-H", "Host: wayshub.test", "http://\(prefix).10/"], check: false),
                result.status == 0
            else { continue }
            let server = result.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-served-by:") }
                .map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
            let revision = result.stdout.range(of: "<!-- revision ").map { range in
                String(result.stdout[range.upperBound...].prefix { $0 != " " })
            } ?? "none"
            seen[server, default: []].insert(revision)
        }
        return seen
    }

    /// A small file system over `path` holding a copy of what was there, filled to the last
    /// block. Never a bind mount (the hosts' mounts are shared: a bind's mounts and unmounts
    /// travel to its peers), and the filler is written only once `path` is seen to be the
    /// tmpfs, never more than its size: a mistake here must not fill this machine's disk.
    func fill(_ host: String, _ path: String) throws {
        try inside(host, """
            rm -rf /run/labctl-fill && mkdir /run/labctl-fill && cp -a \(path)/. /run/labctl-fill/
            mount -t tmpfs -o size=4m labctl-full \(path)
            [ "$(stat -f -c %T \(path))" = tmpfs ]
            cp -a /run/labctl-fill/. \(path)/ && rm -rf /run/labctl-fill
            dd if=/dev/zero of=\(path)/fill.bin bs=4k count=1024 2>/dev/null || true
            [ "$(stat -f -c %a \(path))" -lt 4 ]
            """)
    }

    func powerOff(_ host: String) throws {
        let namespace = "labctl-\(name)-\(host)"
        let links = try runLocal(["ip", "-n", namespace, "-o", "link", "show"]).stdout
        for line in links.split(separator: "\n") {
            let name = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
            if name != "lo" { try runLocal(["ip", "-n", namespace, "link", "set", String(name), "down"]) }
        }
        for _ in 0..<50 {
            let left = processes(host)
            if left.isEmpty { break }
            left.forEach { kill($0, SIGKILL) }
            usleep(100_000)
        }
        #expect(processes(host).isEmpty, "\(host) still has processes")
    }

    /// `labctl lab up` starts the stopped host again (and its network).
    func powerOn() throws {
        for host in LabHarness.hosts {
            let namespace = "labctl-\(name)-\(host)"
            let links = (try? runLocal(["ip", "-n", namespace, "-o", "link", "show"], check: false).stdout) ?? ""
            for line in links.split(separator: "\n") {
                let name = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
                _ = try? runLocal(["ip", "-n", namespace, "link", "set", String(name), "up"], check: false)
            }
        }
        let up = try labctl(["lab", "up", "-i", inventory])
        try #require(up.status == 0, "lab up after the fault: \(up.stdout)")
    }

    func waitUntilAnswers(_ host: String) throws {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let result = try labctl(["exec", "-i", inventory, host, "--become", "--", "systemctl is-system-running --wait || true"], seconds: 60)
            if result.status == 0 { return }
            usleep(500_000)
        }
        Issue.record("\(host) did not come back")
    }
}

/// `labctl up --json`'s document: the run reports of the stages that ran (verify's part is
/// read where needed as plain JSON).
struct UpDocument: Decodable {
    var schemaVersion: Int
    var provision: RunReport?
    var deploy: RunReport?

    static func read(_ path: String) throws -> UpDocument {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(UpDocument.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
