import Foundation
import LabEngine
import TestSupport
import Testing

/// Issue 11's fault matrix on a local lab of its own (real sshd, systemd, nginx, node): each
/// fault is injected from outside the hosts (this machine sees their files, processes and
/// network), then labctl's exit code and words are checked, then one rerun after the fault is
/// gone must bring every host back with the new revision live, `labctl verify` must pass, and a
/// further run must change nothing.
///
/// Interrupts land at step boundaries chosen by data, not by sleeps: a copy of deploy.yml gets a
/// barrier step (every host marks that it is there, then waits for the test) before step k;
/// Ctrl-C arrives while every host waits at it, so the run stops exactly between steps k-1 and k.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct FaultMatrixLabTests {
    static let repository = WeekThreeLabTests.repository
    static let labName = "faults"
    static let prefix = "198.18.55"
    static let hosts = ["proxy", "app1", "app2"]

    let folder: TemporaryDirectory
    var inventory: String { folder.file("inventory.json") }
    var playbooks: String { Self.repository.appendingPathComponent("playbooks").path }
    var appCopy: String { folder.file("app") }

    init() throws {
        folder = try TemporaryDirectory(prefix: "labctl-faults")
    }

    // MARK: the lab and its hosts, seen from this machine

    func writeInventory(app2Weight: Int) throws {
        try """
            { "name": "\(Self.labName)", "domain": "wayshub.test",
              "defaults": { "key": "id_ed25519" }, "ssh": { "known_hosts": "known_hosts" },
              "lab": { "subnet": "\(Self.prefix).0/24", "bridge": "labflt0" },
              "hosts": [
                { "name": "proxy", "address": "\(Self.prefix).10", "roles": ["proxy"] },
                { "name": "app1", "address": "\(Self.prefix).11", "roles": ["app"], "user": "ubuntu", "become": true },
                { "name": "app2", "address": "\(Self.prefix).12", "roles": ["app"], "upstream": { "weight": \(app2Weight) } }
              ],
              "app": { "directory": "/opt/wayshub", "source": { "path": "\(appCopy)" }, "node": { "install": "apt" } },
              "nginx": { "dir": "dumbways" }
            }
            """.write(toFile: inventory, atomically: true, encoding: .utf8)
    }

    /// The app's copy serves `revision` in its page, so a test can tell which code is live.
    func writeApp(revision: String) throws {
        let original = try String(contentsOf: Self.repository.appendingPathComponent("app/wayshub-standin/server.js"), encoding: .utf8)
        let marked = original.replacingOccurrences(of: "<p>Watch, share and upload videos.</p>", with: "<p>Watch, share and upload videos.</p><!-- revision \(revision) -->")
        try marked.write(toFile: appCopy + "/server.js", atomically: true, encoding: .utf8)
    }

    static let stateDirectory = "/var/lib/labctl/labs/\(labName)/hosts"
    func root(_ host: String) -> String { "\(Self.stateDirectory)/\(host)/merged" }

    /// Every process of a host (its nspawn cgroup tree in the named systemd hierarchy).
    func processes(_ host: String) -> [pid_t] {
        let top = "/sys/fs/cgroup/systemd/labctl/\(Self.labName)/\(host)"
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
    func labctl(_ arguments: [String], seconds: Int = 600) throws -> LocalResult {
        let log = folder.file("labctl-\(UUID().uuidString.prefix(6)).log")
        let pid = try spawnBackground([labctlExecutablePath] + arguments, logPath: log)
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
            guard let result = try? runLocal(["curl", "-sS", "-i", "--max-time", "5", "-H", "Host: wayshub.test", "http://\(Self.prefix).10/"], check: false),
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

    // MARK: barriers

    /// deploy.yml with a barrier before its step `index` (the number of steps: after the last).
    func playbooksWithBarrier(before index: Int) throws -> String {
        let copy = folder.file("playbooks-\(index)")
        if !FileManager.default.fileExists(atPath: copy) {
            try runLocal(["cp", "-r", playbooks, copy])
        }
        let deploy = try String(contentsOfFile: playbooks + "/deploy.yml", encoding: .utf8)
        let parts = deploy.components(separatedBy: "\nhandlers:\n")
        try #require(parts.count == 2)
        var steps = parts[0].components(separatedBy: "\n  - name: ")
        let barrier = """
            fault barrier
                hosts: all
                become: true
                command: "touch /var/tmp/labctl-barrier; i=0; while [ ! -e /var/tmp/labctl-release ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; rm -f /var/tmp/labctl-barrier /var/tmp/labctl-release"

            """
        steps.insert(barrier, at: index + 1)
        try (steps.joined(separator: "\n  - name: ") + "\nhandlers:\n" + parts[1]).write(toFile: copy + "/deploy.yml", atomically: true, encoding: .utf8)
        return copy
    }

    static func deploySteps() throws -> Int {
        let deploy = try String(contentsOf: repository.appendingPathComponent("playbooks/deploy.yml"), encoding: .utf8)
        return deploy.components(separatedBy: "\nhandlers:\n")[0].components(separatedBy: "\n  - name: ").count - 1
    }

    func atBarrier(_ host: String) -> Bool { FileManager.default.fileExists(atPath: root(host) + "/var/tmp/labctl-barrier") }

    func release(_ hosts: [String]) {
        for host in hosts { FileManager.default.createFile(atPath: root(host) + "/var/tmp/labctl-release", contents: nil) }
    }

    /// Starts a deploy with a barrier before step `index` and returns once `hosts` wait there
    /// (nil, with the log recorded, if labctl ended first).
    func deployToBarrier(_ index: Int, hosts: [String] = FaultMatrixLabTests.hosts, json: String) throws -> pid_t? {
        for host in Self.hosts {
            try? FileManager.default.removeItem(atPath: root(host) + "/var/tmp/labctl-release")
            try? FileManager.default.removeItem(atPath: root(host) + "/var/tmp/labctl-barrier")
        }
        let log = json + ".log"
        let pid = try spawnBackground(
            [labctlExecutablePath, "deploy", "-i", inventory, "--playbooks", try playbooksWithBarrier(before: index), "--json", json], logPath: log)
        let deadline = Date().addingTimeInterval(300)
        while !hosts.allSatisfy(atBarrier) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || Date() > deadline {
                if Date() > deadline { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
                Issue.record("the deploy never reached the barrier before step \(index) on \(hosts): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                return nil
            }
            usleep(20_000)
        }
        return pid
    }

    // MARK: checks after a fault

    /// One rerun repairs: exit 0, `revision` served by both app servers, app2's weight in
    /// nginx's config, verify passes, and one more run changes nothing.
    func expectOneRerunRepairs(revision: String, weight: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let json = folder.file("repair.json")
        let repair = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", json])
        #expect(repair.status == 0, "\(what): the rerun failed: \(repair.stdout)", sourceLocation: sourceLocation)
        var served = servedRevisions()
        // nginx may still skip a server it found down during the fault (fail_timeout 10 s).
        let deadline = Date().addingTimeInterval(20)
        while served != ["app1": [revision], "app2": [revision]], Date() < deadline {
            usleep(500_000)
            served = servedRevisions(requests: 4)
        }
        #expect(served == ["app1": [revision], "app2": [revision]], "\(what): after the rerun the domain serves \(served)", sourceLocation: sourceLocation)
        let config = try inside("proxy", "cat /etc/nginx/dumbways/my.reverse-proxy.conf").stdout
        #expect(config.contains("server \(Self.prefix).12:3000 weight=\(weight) "), "\(what): nginx's config is not the new one", sourceLocation: sourceLocation)
        let live = try inside("proxy", "nginx -T 2>/dev/null").stdout
        #expect(live.contains("server \(Self.prefix).12:3000 weight=\(weight) "), "\(what): nginx was not reloaded onto the new config", sourceLocation: sourceLocation)
        let verify = try labctl(["verify", "-i", inventory])
        #expect(verify.status == 0, "\(what): verify after the rerun: \(verify.stdout)", sourceLocation: sourceLocation)
        let again = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("again.json")])
        #expect(again.status == 0, sourceLocation: sourceLocation)
        #expect(try report(folder.file("again.json")).changedCount == 0, "\(what): a third run still changed something: \(again.stdout)", sourceLocation: sourceLocation)
    }

    /// No temporary file of labctl's left beside what it writes.
    func expectNoHalfWrittenFiles(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for host in Self.hosts {
            let left = try inside(host, "ls -A /etc/nginx/dumbways /etc/nginx /opt /opt/labctl /etc/systemd/system 2>/dev/null | grep -E 'labctl-(new|old|[A-Za-z0-9]{6}$)' || true").stdout
            #expect(left.isEmpty, "\(what): \(host) has \(left)", sourceLocation: sourceLocation)
        }
    }

    /// Back to a provisioned lab with nothing deployed, for a first deploy.
    func undeploy() throws {
        for host in ["app1", "app2"] {
            try inside(host, """
                systemctl disable --now wayshub >/dev/null 2>&1 || true
                systemctl reset-failed wayshub >/dev/null 2>&1 || true
                rm -rf /opt/wayshub /opt/wayshub.labctl-new /opt/wayshub.labctl-old /opt/labctl/wayshub-start /etc/systemd/system/wayshub.service /var/lib/labctl/pending
                systemctl daemon-reload
                """)
        }
        try inside("proxy", """
            sed -i '/# BEGIN labctl \(Self.labName)/,/# END labctl \(Self.labName)/d' /etc/nginx/nginx.conf
            rm -rf /etc/nginx/dumbways /opt/labctl/nginx-test /var/lib/labctl/pending
            systemctl reload nginx
            """)
    }

    // MARK: the matrix

    @Test func everyFaultIsRepairedByOneRerun() async throws {
        defer {
            _ = try? runLocal([labctlExecutablePath, "lab", "down", "-i", inventory], check: false)
            folder.remove()
        }
        try runLocal(["cp", "-r", Self.repository.appendingPathComponent("app/wayshub-standin").path, appCopy])
        try writeApp(revision: "r0")
        try writeInventory(app2Weight: 1)
        _ = try? runLocal([labctlExecutablePath, "lab", "down", "-i", inventory], check: false)
        let up = try labctl(["lab", "up", "-i", inventory])
        try #require(up.status == 0, "lab up: \(up.stdout)")
        let provision = try labctl(["provision", "-i", inventory, "--playbooks", playbooks])
        try #require(provision.status == 0, "provision: \(provision.stdout)")
        let first = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks])
        try #require(first.status == 0, "deploy: \(first.stdout)")

        var revision = 0
        /// A new revision of the app and a new weight for app2: a redeploy has work on every host.
        func change() throws -> (String, Int) {
            revision += 1
            try writeApp(revision: "r\(revision)")
            try writeInventory(app2Weight: 1 + revision % 2)
            return ("r\(revision)", 1 + revision % 2)
        }

        let steps = try Self.deploySteps()
        let boundaries = Self.boundaries(steps: steps)
        print("fault matrix: Ctrl-C before deploy.yml steps \(boundaries) of \(steps) (LABCTL_FAULT_SEED=\(Self.seed))")

        // Ctrl-C at each boundary of a redeploy, then of a first deploy.
        for firstDeploy in [false, true] {
            for index in boundaries {
                if firstDeploy { try undeploy() }
                let (live, weight) = try change()
                let what = "Ctrl-C before step \(index) of a \(firstDeploy ? "first deploy" : "redeploy")"
                let json = folder.file("interrupted-\(index).json")
                guard let pid = try deployToBarrier(index, json: json) else { continue }
                kill(pid, SIGINT)
                release(Self.hosts)
                let status = try wait(pid, seconds: 300)
                #expect(status == 130, "\(what): exit \(status)")
                let interrupted = try report(json)
                #expect(interrupted.interrupted, "\(what): the report is not marked interrupted")
                // What changed before the stop is reported: the barrier ran everywhere, so every
                // host's report ends with it, and nothing after it ran.
                for host in interrupted.hosts {
                    #expect(host.steps.last?.name == "fault barrier", "\(what): \(host.host) went on past the barrier: \(host.steps.map(\.name))")
                }
                try expectNoHalfWrittenFiles(what)
                try expectOneRerunRepairs(revision: live, weight: weight, what)
            }
        }

        // The controller killed (SIGKILL) between the restart's notification and the restart.
        do {
            let (live, weight) = try change()
            let flush = try Self.stepIndex(named: "the app restarted onto what changed")
            if let pid = try deployToBarrier(flush, json: folder.file("killed.json")) {
                kill(pid, SIGKILL)
                #expect(try wait(pid, seconds: 60) == 128 + SIGKILL)
                release(Self.hosts)
                let rerun = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks])
                #expect(rerun.stdout.contains("pending from an earlier run that stopped before its handlers ran"), "\(rerun.stdout)")
                try expectOneRerunRepairs(revision: live, weight: weight, "SIGKILL of labctl")
            }
        }

        // sshd killed on app2 (its listener and every session) in the middle of a deploy.
        do {
            let (live, weight) = try change()
            let flush = try Self.stepIndex(named: "the app restarted onto what changed")
            if let pid = try deployToBarrier(flush, json: folder.file("sshd.json")) {
                for process in processes("app2") where command(process) == "sshd" { kill(process, SIGKILL) }
                release(["proxy", "app1"])
                let status = try wait(pid, seconds: 300)
                let log = (try? String(contentsOfFile: folder.file("sshd.json.log"), encoding: .utf8)) ?? ""
                #expect(status == 3 || status == 2, "sshd killed: exit \(status)\n\(log)")
                let hosts = try report(folder.file("sshd.json")).hosts
                #expect(hosts.first { $0.host == "app2" }?.status != .ok, "\(log)")
                #expect(hosts.filter { $0.host != "app2" }.allSatisfy { $0.status == .ok }, "the other hosts finish: \(log)")
                #expect(log.contains("app2"), "\(log)")
                // systemd starts sshd again (Restart=on-failure); the fault is gone once it has.
                try inside("app2", "systemctl start ssh; for i in $(seq 100); do systemctl is-active -q ssh && exit 0; sleep 0.1; done; exit 1")
                try expectOneRerunRepairs(revision: live, weight: weight, "sshd killed on app2")
            }
        }

        // app2 powered off in the middle of a run: its network goes silent (no reset), then
        // every process of it dies. labctl notices through the connection's keepalives.
        do {
            let (live, weight) = try change()
            let flush = try Self.stepIndex(named: "the app restarted onto what changed")
            if let pid = try deployToBarrier(flush, json: folder.file("poweroff.json")) {
                try powerOff("app2")
                release(["proxy", "app1"])
                let status = try wait(pid, seconds: 240)
                let log = (try? String(contentsOfFile: folder.file("poweroff.json.log"), encoding: .utf8)) ?? ""
                #expect(status == 3 || status == 2, "power off: exit \(status)\n\(log)")
                #expect(log.contains("app2"), "\(log)")
                #expect(try report(folder.file("poweroff.json")).hosts.filter { $0.host != "app2" }.allSatisfy { $0.status == .ok }, "\(log)")
                try powerOn()
                try expectOneRerunRepairs(revision: live, weight: weight, "app2 powered off")
            }
        }

        // app2 down before the run starts: the others are deployed, app2 is named unreachable.
        do {
            let (live, weight) = try change()
            try powerOff("app2")
            let run = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("down.json")], seconds: 240)
            #expect(run.status == 3, "\(run.stdout)")
            #expect(run.stdout.contains("app2"), "\(run.stdout)")
            let hosts = try report(folder.file("down.json")).hosts
            #expect(hosts.first { $0.host == "app2" }?.status == .unreachable)
            #expect(hosts.filter { $0.host != "app2" }.allSatisfy { $0.status == .ok })
            try powerOn()
            try expectOneRerunRepairs(revision: live, weight: weight, "app2 unreachable at the start")
        }

        // app2 rebooted in the middle of a run.
        do {
            let (live, weight) = try change()
            let flush = try Self.stepIndex(named: "the app restarted onto what changed")
            if let pid = try deployToBarrier(flush, json: folder.file("reboot.json")) {
                try inside("app2", "systemctl reboot", check: false)
                release(["proxy", "app1"])
                let status = try wait(pid, seconds: 240)
                let log = (try? String(contentsOfFile: folder.file("reboot.json.log"), encoding: .utf8)) ?? ""
                #expect(status == 3 || status == 2, "reboot: exit \(status)\n\(log)")
                #expect(log.contains("app2"), "\(log)")
                try waitUntilAnswers("app2")
                try expectOneRerunRepairs(revision: live, weight: weight, "app2 rebooted")
            }
        }

        // The app cannot start on app1 (another program holds its port and answers 502):
        // deploy fails and names app1, nginx keeps serving from app2; once the port is free,
        // one rerun restarts the app that is still owed its restart.
        do {
            let (live, weight) = try change()
            try inside("app1", """
                systemctl stop wayshub
                systemd-run --unit labctl-squatter --quiet -- node -e 'require("http").createServer((q, s) => { s.statusCode = 502; s.end("squatter") }).listen(3000)'
                for i in $(seq 100); do curl -s -o /dev/null localhost:3000 && exit 0; sleep 0.1; done; exit 1
                """)
            let run = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("squatted.json")])
            #expect(run.status == 2, "\(run.stdout)")
            #expect(run.stdout.contains("wayshub did not stay running"), "\(run.stdout)")
            let app1 = try report(folder.file("squatted.json")).hosts.first { $0.host == "app1" }
            #expect(app1?.status == .failed)
            #expect(app1?.pendingHandlers.contains("restart app") == true, "\(String(describing: app1))")
            let served = servedRevisions()
            #expect(served["app2"] == [live], "nginx keeps serving from app2: \(served)")
            try inside("app1", "systemctl stop labctl-squatter")
            try expectOneRerunRepairs(revision: live, weight: weight, "the app exiting at start on app1")
        }

        // The disk under the app fills up on app1 during an upload, and the disk under nginx's
        // config during a file write: each step fails, the old files stay whole and in use.
        do {
            let (live, weight) = try change()
            try fill("app1", "/opt")
            try fill("proxy", "/etc/nginx/dumbways")
            let run = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("full.json")])
            #expect(run.status == 2, "\(run.stdout)")
            #expect(run.stdout.contains("No space left on device"), "\(run.stdout)")
            let hosts = try report(folder.file("full.json")).hosts
            #expect(hosts.first { $0.host == "app1" }?.status == .failed)
            #expect(hosts.first { $0.host == "proxy" }?.status == .failed)
            // The old app still on app1's (full) disk, whole; the old config live on the proxy.
            let old = try inside("app1", "grep -o 'revision r[0-9]*' /opt/wayshub/server.js").stdout
            #expect(old.trimmingCharacters(in: .whitespacesAndNewlines) == "revision r\(revision - 1)", "app1's app: \(old)")
            let config = try inside("proxy", "cat /etc/nginx/dumbways/my.reverse-proxy.conf").stdout
            #expect(config.contains("upstream wayshub_servers"), "the old config is whole: \(config)")
            try expectNoHalfWrittenFiles("disk full")
            try inside("app1", "rm -f /opt/fill.bin")
            try inside("proxy", "rm -f /etc/nginx/dumbways/fill.bin")
            try expectOneRerunRepairs(revision: live, weight: weight, "disk full")
            // The full disks go; what lies under them is an older copy, which the next run replaces.
            try inside("app1", "umount -l /opt")
            try inside("proxy", "umount -l /etc/nginx/dumbways")
        }

        // Two runs at once on the same lab: the second stops at once and names the first.
        do {
            let (live, weight) = try change()
            let flush = try Self.stepIndex(named: "the app restarted onto what changed")
            if let pid = try deployToBarrier(flush, json: folder.file("first-of-two.json")) {
                let second = try labctl(["deploy", "-i", inventory, "--playbooks", playbooks])
                #expect(second.status == 2, "\(second.stdout)")
                #expect(second.stdout.contains("another run holds this host's lock"), "\(second.stdout)")
                release(Self.hosts)
                #expect(try wait(pid, seconds: 300) == 0)
                try expectOneRerunRepairs(revision: live, weight: weight, "two runs at once")
            }
        }
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
        let namespace = "labctl-\(Self.labName)-\(host)"
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
        for host in Self.hosts {
            let namespace = "labctl-\(Self.labName)-\(host)"
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

    static func stepIndex(named name: String) throws -> Int {
        let deploy = try String(contentsOf: repository.appendingPathComponent("playbooks/deploy.yml"), encoding: .utf8)
        let names = deploy.components(separatedBy: "\nhandlers:\n")[0].components(separatedBy: "\n  - name: ").dropFirst()
            .map { String($0.prefix { $0 != "\n" }) }
        return try #require(names.firstIndex(of: name), "deploy.yml has no step '\(name)'")
    }

    /// LABCTL_FAULT_SEED picks the boundaries; unset, every boundary is tried.
    static var seed: String { ProcessInfo.processInfo.environment["LABCTL_FAULT_SEED"] ?? "all" }

    static func boundaries(steps: Int) -> [Int] {
        let all = Array(0...steps)
        guard let seed = UInt64(Self.seed) else { return all }
        var generator = SeededGenerator(state: seed)
        return Array(all.shuffled(using: &generator).prefix(4)).sorted()
    }
}

/// SplitMix64: the same boundaries for the same seed, on every machine.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
