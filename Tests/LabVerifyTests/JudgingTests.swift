import Foundation
import LabSpec
@testable import LabVerify
import Testing

struct PercentileTests {
    @Test("nearest rank: the measured value at or above p % of the values")
    func nearestRank() {
        let values = (1...100).map(Double.init)
        #expect(Percentile.nearestRank(50, ofSorted: values) == 50)
        #expect(Percentile.nearestRank(95, ofSorted: values) == 95)
        #expect(Percentile.nearestRank(99, ofSorted: values) == 99)
        #expect(Percentile.nearestRank(100, ofSorted: values) == 100)
        #expect(Percentile.nearestRank(0, ofSorted: values) == 1)
        let five = [1.0, 2, 3, 4, 50]
        #expect(Percentile.nearestRank(50, ofSorted: five) == 3)
        #expect(Percentile.nearestRank(95, ofSorted: five) == 50)
        #expect(Percentile.nearestRank(99, ofSorted: [7]) == 7)
        #expect(Percentile.nearestRank(50, ofSorted: []) == nil)
    }

    @Test("a latency summary sorts, counts errors as requests but does not time them")
    func summary() {
        let summary = LatencySummary(latencies: [9, 1, 5, 3, 7, 2, 4, 6, 8, 10], errors: 2)
        #expect(summary.requests == 12)
        #expect(summary.errors == 2)
        #expect(summary.p50 == 5)
        #expect(summary.p95 == 10)
        #expect(summary.max == 10)
    }
}

struct DistributionJudgeTests {
    let two = [UpstreamServer(name: "app1"), UpstreamServer(name: "app2")]

    @Test("round robin: an even split passes and every share is expected at half")
    func evenPasses() {
        let judgement = DistributionJudge.judge(counts: ["app1": 26, "app2": 24], servers: two, method: .roundRobin)
        #expect(judgement.passed, "\(judgement.problems)")
        #expect(judgement.shares.map(\.expectedShare) == [0.5, 0.5])
        #expect(judgement.shares.map(\.share) == [0.52, 0.48])
    }

    @Test("round robin: a server that answered nothing is named")
    func missingServerNamed() {
        let judgement = DistributionJudge.judge(counts: ["app1": 50], servers: two, method: .roundRobin)
        #expect(!judgement.passed)
        // Only the cause: app1's 100 % follows from it and is not a second complaint.
        #expect(judgement.problems == ["app2 answered none of 50 requests"])
    }

    @Test("round robin: a lopsided split beyond the tolerance fails, naming the server and its share")
    func lopsidedFails() {
        let judgement = DistributionJudge.judge(counts: ["app1": 45, "app2": 5], servers: two, method: .roundRobin, tolerance: 0.5)
        #expect(!judgement.passed)
        #expect(judgement.problems.count == 2)
        #expect(judgement.problems[0].hasPrefix("app1 answered 45 of 50 requests (90 %)"))
        #expect(judgement.problems[1].hasPrefix("app2 answered 5 of 50 requests (10 %)"))
        // Within the tolerance: 35/15 is 70 %/30 % against 50 % ± 25 %.
        #expect(DistributionJudge.judge(counts: ["app1": 35, "app2": 15], servers: two, method: .roundRobin).passed)
    }

    @Test("round robin: weights set the expected shares")
    func weights() {
        let servers = [UpstreamServer(name: "app1", weight: 3), UpstreamServer(name: "app2", weight: 1)]
        let judgement = DistributionJudge.judge(counts: ["app1": 30, "app2": 10], servers: servers, method: .roundRobin)
        #expect(judgement.passed, "\(judgement.problems)")
        #expect(judgement.shares.map(\.expectedShare) == [0.75, 0.25])
        #expect(!DistributionJudge.judge(counts: ["app1": 20, "app2": 20], servers: servers, method: .roundRobin, tolerance: 0.2).passed)
    }

    @Test("a backup server must stay idle while the others live, and may serve when they are all stopped")
    func backupIdle() {
        let servers = two + [UpstreamServer(name: "app3", backup: true)]
        let idle = DistributionJudge.judge(counts: ["app1": 25, "app2": 25], servers: servers, method: .roundRobin)
        #expect(idle.passed, "\(idle.problems)")
        #expect(idle.shares.last?.expectedShare == 0)
        let busy = DistributionJudge.judge(counts: ["app1": 20, "app2": 20, "app3": 10], servers: servers, method: .roundRobin)
        #expect(busy.problems.contains("backup server app3 answered 10 of 50 requests; nginx uses a backup only when every other server is down"))
        let takeover = DistributionJudge.judge(counts: ["app3": 10], servers: servers, method: .roundRobin, stopped: ["app1", "app2"])
        #expect(takeover.passed, "\(takeover.problems)")
    }

    @Test("ip_hash: all from one server passes; two servers answering fails")
    func ipHash() {
        #expect(DistributionJudge.judge(counts: ["app2": 50], servers: two, method: .ipHash).passed)
        let split = DistributionJudge.judge(counts: ["app1": 25, "app2": 25], servers: two, method: .ipHash)
        #expect(!split.passed)
        #expect(split.problems.first?.contains("2 servers answered (app1 25, app2 25)") == true)
    }

    @Test("least_conn: every server used is enough, the split is not judged")
    func leastConn() {
        #expect(DistributionJudge.judge(counts: ["app1": 45, "app2": 5], servers: two, method: .leastConn).passed)
        #expect(!DistributionJudge.judge(counts: ["app1": 50], servers: two, method: .leastConn).passed)
    }

    @Test("the drill: the stopped server must answer nothing; failures and unattributed answers are problems")
    func drillRules() {
        let clean = DistributionJudge.judge(counts: ["app2": 20], servers: two, method: .roundRobin, stopped: ["app1"], tolerance: .infinity)
        #expect(clean.passed, "\(clean.problems)")
        #expect(clean.shares.first?.stopped == true)
        let leaked = DistributionJudge.judge(counts: ["app1": 1, "app2": 19], servers: two, method: .roundRobin, stopped: ["app1"], tolerance: .infinity)
        #expect(leaked.problems == ["app1 answered 1 of 20 requests although its service was stopped"])
        let failing = DistributionJudge.judge(
            counts: ["app2": 17], failures: 2, unidentified: ["unknown (X-Served-By vm)": 1], servers: two,
            method: .roundRobin, stopped: ["app1"], tolerance: .infinity)
        #expect(failing.problems.contains("2 of 20 requests failed"))
        #expect(failing.problems.contains { $0.hasPrefix("1 of 20 responses did not say which app server answered") })
        #expect(failing.shares.map(\.server) == ["app1", "app2", "unknown (X-Served-By vm)"])
    }

    @Test("no requests at all is a failure, not a pass")
    func nothingSent() {
        #expect(!DistributionJudge.judge(counts: [:], servers: two, method: .roundRobin).passed)
    }
}

struct ServerIdentifierTests {
    let hosts = [
        InventoryHost(name: "app1", address: "10.9.0.11", roles: ["app"]),
        InventoryHost(name: "app2", address: "fd00::12", roles: ["app"]),
    ]

    func probe(servedBy: String? = nil, upstream: String? = nil) -> HTTPProbe {
        HTTPProbe(url: "http://proxy/", status: 200, servedBy: servedBy, upstream: upstream, body: "", milliseconds: 1)
    }

    @Test("X-Upstream: the last server tried is the one that answered; IPv6 in brackets")
    func upstream() {
        let identifier = ServerIdentifier(appHosts: hosts, port: 3000)
        #expect(identifier.identify(probe(upstream: "10.9.0.11:3000")) == "app1")
        #expect(identifier.identify(probe(upstream: "10.9.0.11:3000, [fd00::12]:3000")) == "app2")
        #expect(identifier.identify(probe(upstream: "10.9.0.11:3000 : [fd00::12]:3000")) == "app2")
        #expect(identifier.identify(probe(upstream: "10.9.0.11:4000")) == nil)
        #expect(ServerIdentifier.lastUpstream("a:1, b:2 : c:3") == "c:3")
    }

    @Test("X-Served-By: learned from the direct answers, unless two servers share the name")
    func servedBy() {
        var identifier = ServerIdentifier(appHosts: hosts, port: 3000)
        identifier.learn(["app1": "ubuntu-vm-a", "app2": "ubuntu-vm-b"])
        #expect(identifier.identify(probe(servedBy: "ubuntu-vm-b")) == "app2")
        var shared = ServerIdentifier(appHosts: hosts, port: 3000)
        shared.learn(["app1": "app1", "app2": "app1"])
        // Both call themselves app1: the name is no use, the upstream address decides.
        #expect(shared.identify(probe(servedBy: "app1", upstream: "[fd00::12]:3000")) == "app2")
        #expect(shared.identify(probe(servedBy: "app1")) == nil)
        // The inventory name itself works when nothing was learned (the lab's hosts are named so).
        #expect(ServerIdentifier(appHosts: hosts, port: 3000).identify(probe(servedBy: "app2")) == "app2")
        #expect(shared.describeUnknown(probe(servedBy: "app1")) == "unknown (X-Served-By app1)")
    }
}

struct PageMatcherTests {
    @Test("through the proxy the page must be one an app server serves directly")
    func references() {
        let matcher = PageMatcher(references: ["app1": "<html><title>WaysHub</title>app1</html>"], expectedText: nil)
        #expect(matcher.problem(with: "<html><title>WaysHub</title>app1</html>") == nil)
        let problem = matcher.problem(with: "<html><title>Welcome to nginx!</title></html>")
        #expect(problem == "the page is not the one the app servers serve directly (got <title>Welcome to nginx!</title>)")
    }

    @Test("without references: any HTML page, or one with the expected text")
    func withoutReferences() {
        #expect(PageMatcher(references: [:], expectedText: nil).problem(with: "<!doctype html><html></html>") == nil)
        #expect(PageMatcher(references: [:], expectedText: nil).problem(with: "ok") != nil)
        #expect(PageMatcher(references: [:], expectedText: "wayshub").problem(with: "<html><title>WaysHub</title></html>") == nil)
        #expect(PageMatcher(references: [:], expectedText: "wayshub").problem(with: "<html>React App</html>")?.contains("does not contain 'wayshub'") == true)
    }

    @Test("excerpts: the title, or the collapsed start of the body")
    func excerpts() {
        #expect(PageText.excerpt("<html><head><title>\n  Ways Hub </title>") == "<title>Ways Hub</title>")
        #expect(PageText.excerpt("502 Bad\n\n Gateway") == "502 Bad Gateway")
        #expect(PageText.excerpt(String(repeating: "x", count: 300))?.count == 161)
        #expect(PageText.excerpt("  \n") == nil)
    }
}

struct NginxTimeTests {
    @Test("nginx times: units, sums of units, bare seconds; nonsense is nil")
    func parse() {
        #expect(NginxTime.parse("5s") == .seconds(5))
        #expect(NginxTime.parse("500ms") == .milliseconds(500))
        #expect(NginxTime.parse("1m30s") == .seconds(90))
        #expect(NginxTime.parse("10") == .seconds(10))
        #expect(NginxTime.parse("2h") == .seconds(7200))
        #expect(NginxTime.parse("") == nil)
        #expect(NginxTime.parse("5 s") == nil)
        #expect(NginxTime.parse("fast") == nil)
        #expect(NginxTime.parse("5x") == nil)
    }
}
