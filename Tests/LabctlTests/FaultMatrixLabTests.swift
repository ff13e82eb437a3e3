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
    static let hosts = LabHarness.hosts

    let lab: LabHarness
    var folder: TemporaryDirectory { lab.folder }
    var inventory: String { lab.inventory }
    var playbooks: String { lab.playbooks }

    init() throws {
        lab = try LabHarness(name: "faults", prefix: "198.18.55", bridge: "labflt0")
    }

    // MARK: barriers

    /// Where a barrier goes in deploy.yml: before top-level step `n` (the count: after the
    /// last), or before step `n` of the rolling group (its count: at the end of a host's turn).
    enum Boundary: Hashable, CustomStringConvertible {
        case top(Int)
        case inGroup(Int)
        var description: String {
            switch self {
            case .top(let n): return "before step \(n) of deploy.yml"
            case .inGroup(let n): return "before step \(n) of deploy.yml's rolling group"
            }
        }
    }

    static let barrierCommand =
        #"command: "touch /var/tmp/labctl-barrier; i=0; while [ ! -e /var/tmp/labctl-release ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; rm -f /var/tmp/labctl-barrier /var/tmp/labctl-release""#

    /// deploy.yml's text split at its steps: the top-level ones (`\n  - name: `), the rolling
    /// group's own (`\n      - name: `, inside the last top-level one), the handlers.
    static func deployParts() throws -> (top: [String], handlers: String) {
        let deploy = try String(contentsOf: repository.appendingPathComponent("playbooks/deploy.yml"), encoding: .utf8)
        let parts = deploy.components(separatedBy: "\nhandlers:\n")
        try #require(parts.count == 2)
        return (parts[0].components(separatedBy: "\n  - name: "), parts[1])
    }

    static func boundaries() throws -> [Boundary] {
        let top = try deployParts().top
        let group = try #require(top.firstIndex { $0.contains("\n    steps:\n") })
        let children = top[group].components(separatedBy: "\n      - name: ").count - 1
        return (0..<top.count).map { .top($0) } + (0...children).map { .inGroup($0) }
    }

    func playbooksWithBarrier(_ boundary: Boundary) throws -> String {
        let copy = folder.file("playbooks-\(boundary)".replacingOccurrences(of: " ", with: "-"))
        if !FileManager.default.fileExists(atPath: copy) {
            try runLocal(["cp", "-r", playbooks, copy])
        }
        var (top, handlers) = try Self.deployParts()
        switch boundary {
        case .top(let index):
            top.insert("fault barrier\n    hosts: all\n    become: true\n    \(Self.barrierCommand)\n", at: index + 1)
        case .inGroup(let index):
            let group = try #require(top.firstIndex { $0.contains("\n    steps:\n") })
            var children = top[group].components(separatedBy: "\n      - name: ")
            children.insert("fault barrier\n        \(Self.barrierCommand)\n", at: index + 1)
            top[group] = children.joined(separator: "\n      - name: ")
        }
        try (top.joined(separator: "\n  - name: ") + "\nhandlers:\n" + handlers).write(toFile: copy + "/deploy.yml", atomically: true, encoding: .utf8)
        return copy
    }

    func atBarrier(_ host: String) -> Bool { FileManager.default.fileExists(atPath: lab.root(host) + "/var/tmp/labctl-barrier") }

    func release(_ hosts: [String]) {
        for host in hosts { FileManager.default.createFile(atPath: lab.root(host) + "/var/tmp/labctl-release", contents: nil) }
    }

    /// Starts a deploy with a barrier at `boundary` and returns once `hosts` wait there; hosts
    /// in `passing` are let through the barrier as they reach it (app1's turn, before app2's).
    /// nil, with the log recorded, if labctl ended first.
    func deployToBarrier(_ boundary: Boundary, hosts: [String], passing: [String] = [], json: String) throws -> pid_t? {
        for host in Self.hosts {
            try? FileManager.default.removeItem(atPath: lab.root(host) + "/var/tmp/labctl-release")
            try? FileManager.default.removeItem(atPath: lab.root(host) + "/var/tmp/labctl-barrier")
        }
        let log = json + ".log"
        let pid = try spawnBackground(
            [labctlExecutablePath, "deploy", "-i", inventory, "--playbooks", try playbooksWithBarrier(boundary), "--json", json], logPath: log)
        let deadline = Date().addingTimeInterval(300)
        var passed = Set<String>()
        while !hosts.allSatisfy(atBarrier) {
            for host in passing where !passed.contains(host) && atBarrier(host) {
                release([host])
                passed.insert(host)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || Date() > deadline {
                if Date() > deadline { kill(pid, SIGKILL); _ = waitpid(pid, &status, 0) }
                Issue.record("the deploy never reached the barrier \(boundary) on \(hosts): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
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
        let repair = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", json])
        #expect(repair.status == 0, "\(what): the rerun failed: \(repair.stdout)", sourceLocation: sourceLocation)
        var served = lab.servedRevisions()
        // nginx may still skip a server it found down during the fault (fail_timeout 10 s).
        let deadline = Date().addingTimeInterval(20)
        while served != ["app1": [revision], "app2": [revision]], Date() < deadline {
            usleep(500_000)
            served = lab.servedRevisions(requests: 4)
        }
        #expect(served == ["app1": [revision], "app2": [revision]], "\(what): after the rerun the domain serves \(served)", sourceLocation: sourceLocation)
        let config = try lab.inside("proxy", "cat /etc/nginx/dumbways/my.reverse-proxy.conf").stdout
        #expect(config.contains("server \(lab.prefix).12:3000 weight=\(weight) "), "\(what): nginx's config is not the new one", sourceLocation: sourceLocation)
        let live = try lab.inside("proxy", "nginx -T 2>/dev/null").stdout
        #expect(live.contains("server \(lab.prefix).12:3000 weight=\(weight) "), "\(what): nginx was not reloaded onto the new config", sourceLocation: sourceLocation)
        #expect(!live.contains(" down;"), "\(what): a server is still out of rotation: \(live)", sourceLocation: sourceLocation)
        let verify = try lab.labctl(["verify", "-i", inventory])
        #expect(verify.status == 0, "\(what): verify after the rerun: \(verify.stdout)", sourceLocation: sourceLocation)
        let again = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("again.json")])
        #expect(again.status == 0, sourceLocation: sourceLocation)
        #expect(try lab.report(folder.file("again.json")).changedCount == 0, "\(what): a third run still changed something: \(again.stdout)", sourceLocation: sourceLocation)
    }

    /// No temporary file of labctl's left beside what it writes.
    func expectNoHalfWrittenFiles(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for host in Self.hosts {
            let left = try lab.inside(host, "ls -A /etc/nginx/dumbways /etc/nginx /opt /opt/labctl /opt/wayshub /etc/systemd/system 2>/dev/null | grep -E 'labctl-(new|old|[A-Za-z0-9]{6}$)' || true").stdout
            #expect(left.isEmpty, "\(what): \(host) has \(left)", sourceLocation: sourceLocation)
        }
    }

    /// Back to a provisioned lab with nothing deployed, for a first deploy.
    func undeploy() throws {
        for host in ["app1", "app2"] {
            try lab.inside(host, """
                systemctl disable --now wayshub >/dev/null 2>&1 || true
                systemctl reset-failed wayshub >/dev/null 2>&1 || true
                rm -rf /opt/wayshub /opt/wayshub.labctl-new /opt/wayshub.labctl-old /opt/labctl/wayshub-start /opt/labctl/wayshub-release /etc/systemd/system/wayshub.service /var/lib/labctl/pending
                systemctl daemon-reload
                """)
        }
        try lab.inside("proxy", """
            sed -i '/# BEGIN labctl \(lab.name)/,/# END labctl \(lab.name)/d' /etc/nginx/nginx.conf
            rm -rf /etc/nginx/dumbways /opt/labctl/nginx-test /var/lib/labctl/pending
            systemctl reload nginx
            """)
    }

    // MARK: the matrix

    @Test func everyFaultIsRepairedByOneRerun() async throws {
        defer {
            lab.down()
            folder.remove()
        }
        try lab.upAndDeployed()

        var revision = 0
        /// A new revision of the app and a new weight for app2: a redeploy has work on every host.
        func change() throws -> (String, Int) {
            revision += 1
            try lab.writeApp(revision: "r\(revision)")
            try lab.writeInventory(app2Weight: 1 + revision % 2)
            return ("r\(revision)", 1 + revision % 2)
        }

        let boundaries = try Self.selected(Self.boundaries())
        print("fault matrix: Ctrl-C \(boundaries.map(\.description).joined(separator: "; ")) (LABCTL_FAULT_SEED=\(Self.seed))")
        let flush = try Self.groupStepIndex(named: "the app restarted onto what changed")

        // Ctrl-C at each boundary of a redeploy, then of a first deploy. At a boundary inside
        // the rolling group the run stops in app1's turn (the first; on a first deploy app2 goes
        // at the same time, wherever it is then).
        for firstDeploy in [false, true] {
            for boundary in boundaries {
                if firstDeploy { try undeploy() }
                let (live, weight) = try change()
                let what = "Ctrl-C \(boundary) in a \(firstDeploy ? "first deploy" : "redeploy")"
                let json = folder.file("interrupted.json")
                let waiting: [String]
                if case .top = boundary { waiting = Self.hosts } else { waiting = ["app1"] }
                guard let pid = try deployToBarrier(boundary, hosts: waiting, json: json) else { continue }
                kill(pid, SIGINT)
                release(Self.hosts)
                let status = try lab.wait(pid, seconds: 300)
                #expect(status == 130, "\(what): exit \(status)")
                let interrupted = try lab.report(json)
                #expect(interrupted.interrupted, "\(what): the report is not marked interrupted")
                // What changed before the stop is reported, and nothing after it ran: the
                // report of each host that waited at the barrier ends with it.
                for host in interrupted.hosts where waiting.contains(host.host) {
                    #expect(host.steps.last?.name == "fault barrier", "\(what): \(host.host) went on past the barrier: \(host.steps.map(\.name))")
                }
                // In app1's turn of a redeploy, app1 is out of rotation and the report says so.
                if case .inGroup = boundary, !firstDeploy {
                    let app1 = interrupted.hosts.first { $0.host == "app1" }
                    #expect(app1?.outOfRotation == ["proxy"], "\(what): \(String(describing: app1))")
                    #expect(app1?.error?.contains("app1 is out of rotation on proxy") == true, "\(what): \(app1?.error ?? "")")
                }
                try expectNoHalfWrittenFiles(what)
                try expectOneRerunRepairs(revision: live, weight: weight, what)
            }
        }

        // The controller killed (SIGKILL) in app1's turn, between the restart's notification
        // and the restart.
        do {
            let (live, weight) = try change()
            if let pid = try deployToBarrier(.inGroup(flush), hosts: ["app1"], json: folder.file("killed.json")) {
                kill(pid, SIGKILL)
                #expect(try lab.wait(pid, seconds: 60) == 128 + SIGKILL)
                release(Self.hosts)
                let rerun = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks])
                #expect(rerun.stdout.contains("pending from an earlier run that stopped before its handlers ran"), "\(rerun.stdout)")
                try expectOneRerunRepairs(revision: live, weight: weight, "SIGKILL of labctl")
            }
        }

        /// A fault on app2 in the middle of its turn (app1's turn done), then what labctl says.
        func faultInAppTwosTurn(_ name: String, seconds: Int = 300, _ inject: () throws -> Void) throws -> (RunReport, String)? {
            guard let pid = try deployToBarrier(.inGroup(flush), hosts: ["app2"], passing: ["app1"], json: folder.file("\(name).json")) else {
                return nil
            }
            try inject()
            let status = try lab.wait(pid, seconds: seconds)
            let log = (try? String(contentsOfFile: folder.file("\(name).json.log"), encoding: .utf8)) ?? ""
            #expect(status == 3, "\(name): exit \(status)\n\(log)")
            let report = try lab.report(folder.file("\(name).json"))
            let app2 = report.hosts.first { $0.host == "app2" }
            #expect(app2?.status == .unreachable, "\(name): \(log)")
            #expect(app2?.outOfRotation == ["proxy"], "\(name): \(log)")
            #expect(report.hosts.filter { $0.host != "app2" }.allSatisfy { $0.status == .ok }, "\(name): the other hosts finish: \(log)")
            #expect(log.contains("app2"), "\(log)")
            return (report, log)
        }

        // sshd killed on app2 (its listener and every session) in the middle of a deploy.
        do {
            let (live, weight) = try change()
            _ = try faultInAppTwosTurn("sshd") {
                for process in lab.processes("app2") where lab.command(process) == "sshd" { kill(process, SIGKILL) }
            }
            // systemd starts sshd again (Restart=on-failure); the fault is gone once it has.
            try lab.inside("app2", "systemctl start ssh; for i in $(seq 100); do systemctl is-active -q ssh && exit 0; sleep 0.1; done; exit 1")
            try expectOneRerunRepairs(revision: live, weight: weight, "sshd killed on app2")
        }

        // app2 powered off in the middle of a run: its network goes silent (no reset), then
        // every process of it dies. labctl notices through the connection's keepalives.
        do {
            let (live, weight) = try change()
            _ = try faultInAppTwosTurn("poweroff", seconds: 240) { try lab.powerOff("app2") }
            try lab.powerOn()
            try expectOneRerunRepairs(revision: live, weight: weight, "app2 powered off")
        }

        // app2 down before the run starts: the others are deployed, app2 is named unreachable.
        do {
            let (live, weight) = try change()
            try lab.powerOff("app2")
            let run = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("down.json")], seconds: 240)
            #expect(run.status == 3, "\(run.stdout)")
            #expect(run.stdout.contains("app2"), "\(run.stdout)")
            let hosts = try lab.report(folder.file("down.json")).hosts
            #expect(hosts.first { $0.host == "app2" }?.status == .unreachable)
            #expect(hosts.filter { $0.host != "app2" }.allSatisfy { $0.status == .ok })
            try lab.powerOn()
            try expectOneRerunRepairs(revision: live, weight: weight, "app2 unreachable at the start")
        }

        // app2 rebooted in the middle of a run.
        do {
            let (live, weight) = try change()
            _ = try faultInAppTwosTurn("reboot", seconds: 240) { try lab.inside("app2", "systemctl reboot", check: false) }
            try lab.waitUntilAnswers("app2")
            try expectOneRerunRepairs(revision: live, weight: weight, "app2 rebooted")
        }

        // The app cannot start on app1 (another program holds its port and answers 502):
        // deploy fails and names app1, nginx keeps serving from app2; once the port is free,
        // one rerun restarts the app that is still owed its restart.
        do {
            let (live, weight) = try change()
            try lab.inside("app1", """
                systemctl stop wayshub
                systemd-run --unit labctl-squatter --quiet -- node -e 'require("http").createServer((q, s) => { s.statusCode = 502; s.end("squatter") }).listen(3000)'
                for i in $(seq 100); do curl -s -o /dev/null localhost:3000 && exit 0; sleep 0.1; done; exit 1
                """)
            let run = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("squatted.json")])
            #expect(run.status == 2, "\(run.stdout)")
            #expect(run.stdout.contains("wayshub did not stay running"), "\(run.stdout)")
            let app1 = try lab.report(folder.file("squatted.json")).hosts.first { $0.host == "app1" }
            #expect(app1?.status == .failed)
            #expect(app1?.pendingHandlers.contains("restart app") == true, "\(String(describing: app1))")
            let served = lab.servedRevisions()
            #expect(served["app2"] == [live], "nginx keeps serving from app2: \(served)")
            try lab.inside("app1", "systemctl stop labctl-squatter")
            try expectOneRerunRepairs(revision: live, weight: weight, "the app exiting at start on app1")
        }

        // The disk under the app fills up on app1 during an upload, and the disk under nginx's
        // config during a file write: each step fails, the old files stay whole and in use.
        do {
            let (live, weight) = try change()
            try lab.fill("app1", "/opt")
            try lab.fill("proxy", "/etc/nginx/dumbways")
            let run = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks, "--json", folder.file("full.json")])
            #expect(run.status == 2, "\(run.stdout)")
            #expect(run.stdout.contains("No space left on device"), "\(run.stdout)")
            let hosts = try lab.report(folder.file("full.json")).hosts
            #expect(hosts.first { $0.host == "app1" }?.status == .failed)
            #expect(hosts.first { $0.host == "proxy" }?.status == .failed)
            // The old app still on app1's (full) disk, whole; the old config live on the proxy.
            let old = try lab.inside("app1", "grep -o 'revision r[0-9]*' /opt/wayshub/current/server.js").stdout
            #expect(old.trimmingCharacters(in: .whitespacesAndNewlines) == "revision r\(revision - 1)", "app1's app: \(old)")
            let config = try lab.inside("proxy", "cat /etc/nginx/dumbways/my.reverse-proxy.conf").stdout
            #expect(config.contains("upstream wayshub_servers"), "the old config is whole: \(config)")
            try expectNoHalfWrittenFiles("disk full")
            try lab.inside("app1", "rm -f /opt/fill.bin")
            try lab.inside("proxy", "rm -f /etc/nginx/dumbways/fill.bin")
            try expectOneRerunRepairs(revision: live, weight: weight, "disk full")
            // The full disks go; what lies under them is an older copy, which the next run replaces.
            try lab.inside("app1", "umount -l /opt")
            try lab.inside("proxy", "umount -l /etc/nginx/dumbways")
        }

        // Two runs at once on the same lab: the second stops at once and names the first.
        do {
            let (live, weight) = try change()
            if let pid = try deployToBarrier(.top(0), hosts: Self.hosts, json: folder.file("first-of-two.json")) {
                let second = try lab.labctl(["deploy", "-i", inventory, "--playbooks", playbooks])
                #expect(second.status == 2, "\(second.stdout)")
                #expect(second.stdout.contains("another run holds this host's lock"), "\(second.stdout)")
                release(Self.hosts)
                #expect(try lab.wait(pid, seconds: 300) == 0)
                try expectOneRerunRepairs(revision: live, weight: weight, "two runs at once")
            }
        }
    }

    static func groupStepIndex(named name: String) throws -> Int {
        let top = try deployParts().top
        let group = try #require(top.firstIndex { $0.contains("\n    steps:\n") })
        let names = top[group].components(separatedBy: "\n      - name: ").dropFirst().map { String($0.prefix { $0 != "\n" }) }
        return try #require(names.firstIndex(of: name), "deploy.yml's rolling group has no step '\(name)'")
    }

    /// LABCTL_FAULT_SEED picks four boundaries; unset, every boundary is tried.
    static var seed: String { ProcessInfo.processInfo.environment["LABCTL_FAULT_SEED"] ?? "all" }

    static func selected(_ all: [Boundary]) -> [Boundary] {
        guard let seed = UInt64(Self.seed) else { return all }
        var generator = SeededGenerator(state: seed)
        let picked = Set(all.indices.shuffled(using: &generator).prefix(4))
        return all.indices.filter(picked.contains).map { all[$0] }
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
