import Foundation
@testable import LabVerify
import SSH
import TestSupport
import Testing

/// The drill's parts that need no lab: what a host says about itself, the status line's
/// countdown, the report's lines at 80 columns, and the firewall script on a real nft.
struct DrillPartsTests {
    @Test("a host's answer: the unit's states, the firewall tool, a leftover cut removed")
    func hostFacts() {
        let unit = DrillHostFacts.parse("tool=nft\nload=loaded\nactive=active\nremoved=no\n")
        #expect(unit.unitRuns && unit.unitExists && unit.firewallTool == "nft" && !unit.removedLeftoverCut)
        let byHand = DrillHostFacts.parse("tool=none\nload=not-found\nactive=inactive\nremoved=yes\n")
        #expect(!byHand.unitRuns && !byHand.unitExists && byHand.firewallTool == nil && byHand.removedLeftoverCut)
        let failed = DrillHostFacts.parse("tool=iptables\nload=loaded\nactive=failed\nremoved=no\n")
        #expect(failed.unitExists && !failed.unitRuns && failed.firewallTool == "iptables")
        #expect(DrillHostFacts.parse("").loadState == nil)
    }

    @Test("hints: labctl exec with --become, -i only for another inventory, every word quoted")
    func hints() {
        #expect(LabctlHints().exec("app1", ["systemctl", "start", "wayshub"]) == "labctl exec app1 --become -- systemctl start wayshub")
        #expect(LabctlHints(inventoryFile: "inventory.json").inventoryPath == nil)
        let other = LabctlHints(inventoryFile: "/tmp/my lab.json")
        #expect(other.exec("app1", ["systemctl", "start", "my app"]) == "labctl exec app1 --become -i '/tmp/my lab.json' -- systemctl start 'my app'")
        #expect(other.labctl(["verify"]) == "labctl verify -i '/tmp/my lab.json'")
    }

    @Test("the status line: the check and its time, a wait counted down in whole seconds, cut to the width")
    func statusLine() {
        var status = VerifyStatus()
        let start = ContinuousClock.now
        #expect(status.line(now: start, width: 80, frame: 0) == nil)
        status.record(.started(.failover, name: "failover: app1 down"), at: start)
        #expect(status.line(now: start + .seconds(2), width: 80, frame: 0) == "⠋ failover: app1 down 2s")
        status.record(.waiting("waiting out fail_timeout", seconds: 6.2), at: start + .seconds(2))
        #expect(status.line(now: start + .seconds(3), width: 80, frame: 1) == "⠙ failover: app1 down 3s · waiting out fail_timeout: 6 s left")
        #expect(status.line(now: start + .seconds(8), width: 80, frame: 1) == "⠙ failover: app1 down 8s · waiting out fail_timeout: 1 s left")
        status.record(.note("starting wayshub on app1"), at: start + .seconds(9))
        #expect(status.line(now: start + .seconds(9), width: 80, frame: 0) == "⠋ failover: app1 down 9s · starting wayshub on app1")
        #expect(status.line(now: start + .seconds(9), width: 20, frame: 0)?.count == 20)
        status.record(.finished(CheckResult(kind: .failover, name: "failover: app1 down", status: .pass, summary: "")), at: start + .seconds(10))
        #expect(status.line(now: start + .seconds(10), width: 80, frame: 0) == nil)
    }

    @Test("the table at 80 columns: no line wider unless one word is, long summaries under their check")
    func eightyColumns() {
        let long = "no answer from 198.18.42.11:3000: connection refused; wayshub is inactive on app1: start it with labctl exec app1 --become -- systemctl start wayshub (its log: labctl exec app1 --become -- journalctl -u wayshub -n 50 --no-pager)"
        let report = VerifyReport(
            lab: "wayshub-lab", domain: "wayshub.lab", proxy: "198.18.42.10:80", startedAt: Date(), seconds: 2,
            checks: [
                CheckResult(kind: .appDirect, name: "app1 answers on :3000", host: "app1", status: .fail, summary: long,
                            evidence: Evidence(target: "GET http://198.18.42.11:3000/", details: [long])),
                CheckResult(kind: .appDirect, name: "app2 answers on :3000", host: "app2", status: .pass, summary: "200 in 2.0 ms"),
                CheckResult(kind: .balancing, name: "load balancing (round_robin, 50 requests)", status: .pass, summary: "even",
                            distribution: [ServerShare(server: "app1", count: 25, share: 0.5, expectedShare: 0.5, stopped: true)]),
            ])
        let lines = report.table(width: 80).split(separator: "\n", omittingEmptySubsequences: false)
        for line in lines {
            #expect(line.count <= 80 || !line.trimmingCharacters(in: .whitespaces).contains(" "), "\(line)")
        }
        #expect(lines.contains { $0.hasPrefix("  FAIL  app1 answers on :3000") && $0.trimmingCharacters(in: .whitespaces).hasSuffix(":3000") })
        #expect(lines.contains { $0.hasPrefix("        no answer from 198.18.42.11:3000") })
        #expect(lines.contains { $0.hasPrefix("  PASS  app2 answers on :3000") && $0.hasSuffix("200 in 2.0 ms") })
    }

    @Test("the firewall script on a real nft in a network namespace of its own: cut, found, removed, idempotent")
    func firewallScript() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") else {
            Issue.record("needs root and nft (scripts/install-deps.sh installs nftables)")
            return
        }
        func run(_ action: String) throws -> String {
            // unshare -n: a network namespace of its own, so this machine's firewall is never touched.
            try runLocal(["unshare", "-n", "sh", "-c", """
                set -e
                \(["sh", "-c", DrillHostScript.text, "labctl-drill", "cut", "3000", "x"].map(ShellQuoting.quote).joined(separator: " "))
                nft list table inet labctl_drill
                \(["sh", "-c", DrillHostScript.text, "labctl-drill", action, "3000", "labctl-no-such-unit"].map(ShellQuoting.quote).joined(separator: " "))
                nft list table inet labctl_drill 2>/dev/null && echo STILL-CUT || echo NO-CUT
                """]).stdout
        }
        let inspected = try run("inspect")
        #expect(inspected.contains("iifname != \"lo\" tcp dport 3000 reject with tcp reset"), "\(inspected)")
        #expect(inspected.contains("tool=nft"))
        #expect(inspected.contains("removed=yes"))
        #expect(inspected.hasSuffix("NO-CUT\n"), "\(inspected)")
        let restored = try run("restore")
        #expect(restored.contains("removed=yes") && restored.hasSuffix("NO-CUT\n"), "\(restored)")
        // A cut over a cut is one table, not two rule sets.
        let twice = try runLocal(["unshare", "-n", "sh", "-c", """
            set -e
            \(["sh", "-c", DrillHostScript.text, "labctl-drill", "cut", "3000", "x"].map(ShellQuoting.quote).joined(separator: " "))
            \(["sh", "-c", DrillHostScript.text, "labctl-drill", "cut", "3000", "x"].map(ShellQuoting.quote).joined(separator: " "))
            nft list table inet labctl_drill | grep -c reject
            """]).stdout
        #expect(twice == "1\n", "\(twice)")
    }

}

struct DrillRecorderTests {
    @Test("the timeline: one bucket per second from 0, answers by server, errors, latency, events in order")
    func buckets() async throws {
        let clock = ManualSeconds()
        let recorder = DrillRecorder(secondsSinceStart: { clock.value })
        recorder.request(server: "app1", milliseconds: 2)
        recorder.request(server: "app2", milliseconds: 4)
        recorder.request(server: nil, milliseconds: nil)
        recorder.event(.down, server: "app1", how: "cut")
        clock.value = 1.1
        recorder.request(server: "app2", milliseconds: 8)
        recorder.request(server: nil, milliseconds: 1)
        recorder.event(.restored, server: "app1", how: "removed")
        let timeline = recorder.timeline(servers: ["app1", "app2"])
        #expect(timeline.buckets.count == 2)
        #expect(timeline.buckets[0].answered == ["app1": 1, "app2": 1])
        #expect(timeline.buckets[0].errors == 1)
        #expect(timeline.buckets[0].p50 == 2 && timeline.buckets[0].p99 == 4)
        #expect(timeline.buckets[1].answered == ["app2": 1, "unknown": 1])
        #expect(timeline.events.map(\.kind) == [.down, .restored])
        #expect(timeline.events[1].at == 1.1)
    }
}

/// A time the test sets by hand.
private final class ManualSeconds: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = 0.0
    var value: Double {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
