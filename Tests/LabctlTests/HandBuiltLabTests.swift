import Foundation
import LabEngine
import SSH
import TestSupport
import Testing

/// A lab a student built by hand, as an instructor would check it: nginx with a config written
/// by hand (no shared `zone`), the app started with nohup as the login user, no systemd unit.
/// The drill must take an app server down however the app runs (a firewall rule on the app
/// host), say which way it used, put everything back, and repair a cut that a killed run left.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct HandBuiltLabTests {
    static let domain = "wayshub.test"

    @Test func theDrillCutsOffAnAppThatIsNotAUnitAndRepairsAKilledRun() throws {
        let lab = try LabHarness(name: "handbuilt", prefix: "198.18.36", bridge: "labhand0")
        defer {
            lab.down()
            lab.folder.remove()
        }
        try runLocal(["cp", "-r", LabHarness.repository.appendingPathComponent("app/wayshub-standin").path, lab.appCopy])
        try lab.writeInventory(app2Weight: 1)
        lab.down()
        let up = try lab.labctl(["lab", "up", "-i", lab.inventory])
        try #require(up.status == 0, "lab up: \(up.stdout)")
        // Packages only (nginx, node); the rest by hand.
        let provision = try lab.labctl(["provision", "-i", lab.inventory, "--playbooks", lab.playbooks])
        try #require(provision.status == 0, "provision: \(provision.stdout)")
        try buildByHand(lab)
        let pids = try appProcesses(lab)

        // verify --failover on its own finds that the app is no unit and cuts its port off. On a
        // terminal (a pty from `script`) the waits are counted down on the status line, which is
        // gone before the table.
        let html = lab.folder.file("report.html")
        let command = [labctlExecutablePath, "verify", "-i", lab.inventory, "--failover", "--requests", "20", "--html", html]
        let drill = try runLocal(
            ["timeout", "300", "script", "-qec", command.map(ShellQuoting.quote).joined(separator: " "), "/dev/null"],
            environment: ["TERM": "xterm"], check: false)
        #expect(drill.status == 0, "\(drill.stdout)")
        #expect(drill.stdout.contains("waiting out fail_timeout before the drill: "), "\(drill.stdout)")
        #expect(drill.stdout.contains(" s left"), "\(drill.stdout)")
        let table = try #require(drill.stdout.range(of: "labctl verify: handbuilt"))
        let lastClear = try #require(drill.stdout.range(of: "\u{1B}[2K", options: .backwards))
        #expect(lastClear.upperBound <= table.lowerBound)
        // The HTML report has the drill's chart: a series per app server, each one's marks.
        let page = try String(contentsOfFile: html, encoding: .utf8)
        for server in ["app1", "app2"] {
            #expect(page.contains("data-series=\"\(server)\""), "\(server)'s series")
            for mark in ["down", "restored", "back"] {
                #expect(page.contains("data-mark=\"\(mark)\" data-server=\"\(server)\""), "\(mark) \(server)")
            }
        }
        #expect(drill.stdout.contains("taking app1 down: cut :3000 off on app1 with a firewall rule"), "\(drill.stdout)")
        #expect(drill.stdout.contains("taking app2 down: cut :3000 off on app2"), "\(drill.stdout)")
        #expect(!drill.stdout.contains("systemctl start") && !drill.stdout.contains("systemctl stop"), "no systemd hint for an app that is no unit: \(drill.stdout)")
        // Everything as it was: no rule left, the same app processes serving.
        #expect(try cutsLeft(lab) == "", "the drill's rules were removed")
        #expect(try appProcesses(lab) == pids, "the app was never stopped")

        // --stop-by service on an app that is no unit: refused per server with what to do.
        let service = try lab.labctl(["verify", "-i", lab.inventory, "--failover", "--stop-by", "service", "--requests", "20"], seconds: 300)
        #expect(service.status == 2, "\(service.stdout)")
        #expect(flat(service.stdout).contains("wayshub is not a systemd unit on app1"), "\(service.stdout)")
        #expect(flat(service.stdout).contains("--service UNIT"), "\(service.stdout)")

        // labctl killed while app1 is cut off: the rule stays on the host; the next verify
        // finds it, removes it and says so, and the one after passes.
        let log = lab.folder.file("killed-drill.log")
        let pid = try spawnBackground([labctlExecutablePath, "verify", "-i", lab.inventory, "--failover", "--requests", "2000"], logPath: log)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("taking app1 down") {
            usleep(100_000)
        }
        usleep(1_500_000)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(try cutsLeft(lab).contains("labctl_drill"), "SIGKILL left the cut in place: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let found = try lab.labctl(["verify", "-i", lab.inventory, "--requests", "20"], seconds: 300)
        #expect(found.status == 2, "\(found.stdout)")
        #expect(flat(found.stdout).contains("left by an interrupted failover drill"), "\(found.stdout)")
        #expect(try cutsLeft(lab) == "")
        // nginx counts app1 out for its fail_timeout (5 s) after its last failure.
        sleep(7)
        let clean = try lab.labctl(["verify", "-i", lab.inventory, "--requests", "20"], seconds: 300)
        #expect(clean.status == 0, "\(clean.stdout)")

        // The app stopped by hand on app2: the hint asks whether it runs, with no systemd line.
        try lab.labctl(["exec", "-i", lab.inventory, "app2", "--", "pkill -x node"])
        let stopped = try lab.labctl(["verify", "-i", lab.inventory, "--requests", "20"], seconds: 300)
        #expect(stopped.status == 2)
        #expect(flat(stopped.stdout).contains("the app is not the systemd unit wayshub on app2: is it running there?"), "\(stopped.stdout)")
        #expect(!stopped.stdout.contains("systemctl start"), "\(stopped.stdout)")
    }

    /// What a student does after installing the packages: the app copied and started with nohup
    /// as the login user, nginx's config written by hand and included from nginx.conf.
    func buildByHand(_ lab: LabHarness) throws {
        let server = try Data(contentsOf: URL(fileURLWithPath: lab.appCopy + "/server.js")).base64EncodedString()
        let package = try Data(contentsOf: URL(fileURLWithPath: lab.appCopy + "/package.json")).base64EncodedString()
        for host in ["app1", "app2"] {
            let start = try lab.labctl(["exec", "-i", lab.inventory, host, "--", """
                mkdir -p ~/wayshub && cd ~/wayshub && echo \(server) | base64 -d > server.js && echo \(package) | base64 -d > package.json
                setsid nohup node server.js > app.log 2>&1 < /dev/null &
                for i in $(seq 100); do curl -fs -o /dev/null localhost:3000/ && exit 0; sleep 0.1; done; exit 1
                """])
            try #require(start.status == 0, "\(host): \(start.stdout)")
        }
        let config = """
            upstream wayshub {
                server \(lab.prefix).11:3000 fail_timeout=5s;
                server \(lab.prefix).12:3000 fail_timeout=5s;
            }
            server {
                listen 80;
                server_name \(Self.domain);
                location / { proxy_pass http://wayshub; }
            }
            """
        let proxy = try lab.labctl(["exec", "-i", lab.inventory, "proxy", "--", """
            set -e
            mkdir -p /etc/nginx/dumbways
            echo \(Data(config.utf8).base64EncodedString()) | base64 -d > /etc/nginx/dumbways/my.reverse-proxy.conf
            grep -q 'include /etc/nginx/dumbways/\\*;' /etc/nginx/nginx.conf || sed -i 's|^http {|http {\\n\\tinclude /etc/nginx/dumbways/*;|' /etc/nginx/nginx.conf
            nginx -t && systemctl reload nginx
            """])
        try #require(proxy.status == 0, "proxy: \(proxy.stdout)")
    }

    /// The table's text with its wrapping undone (one space for each run of spaces and newlines).
    func flat(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }

    /// The node processes of both app servers, by host.
    func appProcesses(_ lab: LabHarness) throws -> [String: [pid_t]] {
        var all: [String: [pid_t]] = [:]
        for host in ["app1", "app2"] {
            all[host] = lab.processes(host).filter { lab.command($0) == "node" }.sorted()
            #expect(all[host]?.isEmpty == false, "\(host) runs the app")
        }
        return all
    }

    /// What the drill's rules leave on the app servers (nothing, once put back).
    func cutsLeft(_ lab: LabHarness) throws -> String {
        try ["app1", "app2"].map { host in
            try lab.inside(host, "nft list table inet labctl_drill 2>/dev/null || true").stdout
        }.joined()
    }
}
