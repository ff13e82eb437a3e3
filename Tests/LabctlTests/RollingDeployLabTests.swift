import Foundation
import LabEngine
import TestSupport
import Testing

/// Issue 13 on a local lab: a redeploy under steady load through the proxy loses no request,
/// the app servers are updated one after another, a broken release stops the rollout at the
/// first server while the others keep serving the old one, a first deploy or an nginx-only
/// change stays parallel with one reload, and a rollback under load returns every server to
/// the last healthy release the same way.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct RollingDeployLabTests {
    let lab: LabHarness

    init() throws {
        lab = try LabHarness(name: "rolling", prefix: "198.18.44", bridge: "labroll0")
    }

    /// Requests through the proxy at `rate` per second until `stop` exists: every answer's
    /// status and revision, counted (python3's standard library; one connection per request).
    static let loadScript = #"""
        import http.client, json, os, sys, threading, time
        host, rate, stop, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
        results = {"requests": 0, "failed": 0, "errors": [], "revisions": {}}
        lock = threading.Lock()
        def one():
            status, revision = None, "none"
            try:
                c = http.client.HTTPConnection(host, 80, timeout=10)
                c.request("GET", "/", headers={"Host": "wayshub.test"})
                r = c.getresponse()
                body = r.read().decode("utf-8", "replace")
                status = r.status
                if "<!-- revision " in body:
                    revision = body.split("<!-- revision ", 1)[1].split(" ", 1)[0]
                server = r.getheader("X-Served-By", "?")
                c.close()
            except Exception as e:
                status, server = str(e), "?"
            with lock:
                results["requests"] += 1
                if status != 200:
                    results["failed"] += 1
                    results["errors"].append(str(status))
                else:
                    results["revisions"].setdefault(server, {}).setdefault(revision, 0)
                    results["revisions"][server][revision] += 1
        threads = []
        start = time.monotonic()
        n = 0
        deadline = start + 600
        while not os.path.exists(stop) and time.monotonic() < deadline:
            t = threading.Thread(target=one); t.start(); threads.append(t)
            n += 1
            pause = start + n / rate - time.monotonic()
            if pause > 0: time.sleep(pause)
        for t in threads: t.join()
        results["seconds"] = time.monotonic() - start
        json.dump(results, open(out, "w"))
        """#

    struct Load: Decodable {
        var requests: Int
        var failed: Int
        var errors: [String]
        var revisions: [String: [String: Int]]
        var seconds: Double
    }

    /// Runs `body` under load and returns what the load saw.
    func underLoad(_ name: String, _ body: () throws -> Void) throws -> Load {
        let script = lab.folder.file("load.py")
        try Self.loadScript.write(toFile: script, atomically: true, encoding: .utf8)
        let stop = lab.folder.file("\(name).stop")
        let out = lab.folder.file("\(name).load.json")
        let pid = try spawnBackground(["/usr/bin/python3", script, "\(lab.prefix).10", "60", stop, out], logPath: lab.folder.file("\(name).load.log"))
        defer { FileManager.default.createFile(atPath: stop, contents: nil) }
        usleep(500_000)
        try body()
        FileManager.default.createFile(atPath: stop, contents: nil)
        _ = try lab.wait(pid, seconds: 120)
        return try JSONDecoder().decode(Load.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
    }

    func deploy(_ json: String) throws -> (LocalResult, RunReport) {
        let run = try lab.labctl(["deploy", "-i", lab.inventory, "--playbooks", lab.playbooks, "--json", lab.folder.file(json)])
        return (run, try lab.report(lab.folder.file(json)))
    }

    func turns(_ report: RunReport) -> [String: RollingTurn] {
        var turns: [String: RollingTurn] = [:]
        for host in report.hosts { if let turn = host.turns.first { turns[host.host] = turn } }
        return turns
    }

    @Test func aRedeployUnderLoadLosesNoRequestAndABrokenReleaseStopsAtTheFirstServer() async throws {
        defer {
            lab.down()
            lab.folder.remove()
        }
        try lab.upAndDeployed()
        // The first deploy: nothing was serving, so both app servers went at once.
        let first = try lab.report(lab.folder.file("first-deploy.json"))
        #expect(turns(first).values.allSatisfy { !$0.inTurn && !$0.takenOut }, "\(turns(first))")

        // A new release under load: no failed request, one server after the other.
        try lab.writeApp(revision: "r1")
        var redeploy: (LocalResult, RunReport)?
        let load = try underLoad("redeploy") { redeploy = try deploy("redeploy.json") }
        let (run, report) = try #require(redeploy)
        #expect(run.status == 0, "\(run.stdout)")
        #expect(load.requests >= 200, "\(load)")
        #expect(load.failed == 0, "requests failed during the rolling deploy: \(load.errors.prefix(10))")
        let served = lab.servedRevisions()
        #expect(served == ["app1": ["r1"], "app2": ["r1"]], "\(served)")
        let rolled = turns(report)
        let one = try #require(rolled["app1"]), two = try #require(rolled["app2"])
        #expect(one.inTurn && one.takenOut && two.inTurn && two.takenOut, "\(rolled)")
        #expect(one.endSecond <= two.startSecond, "the two servers' turns overlap: \(rolled)")
        #expect(try lab.inside("proxy", "nginx -T 2>/dev/null").stdout.contains(" down;") == false)

        // A second deploy changes nothing and takes nobody out.
        let (again, againReport) = try deploy("again.json")
        #expect(again.status == 0)
        #expect(againReport.changedCount == 0, "\(again.stdout)")
        #expect(turns(againReport).values.allSatisfy { !$0.takenOut })

        // A broken release: app1 is taken out, fails its health check and stays out; app2 is
        // not started and keeps serving r1; the site answers throughout.
        try lab.writeApp(revision: "r2", broken: true)
        var brokenRun: (LocalResult, RunReport)?
        let brokenLoad = try underLoad("broken") { brokenRun = try deploy("broken.json") }
        let (broken, brokenReport) = try #require(brokenRun)
        #expect(broken.status == 2, "\(broken.stdout)")
        #expect(broken.stdout.contains("app1"), "\(broken.stdout)")
        #expect(broken.stdout.contains("wayshub did not stay running"), "\(broken.stdout)")
        // Why, in the app's own words (its last log lines).
        #expect(broken.stdout.contains("broken release"), "\(broken.stdout)")
        // And what to do next, as commands that work as typed.
        #expect(broken.stdout.contains("app1 is out of rotation and the other servers keep serving: fix what stopped it (the log lines above) and run `labctl deploy -i \(lab.inventory) --playbooks \(lab.playbooks)` again, or put the previous release back with `labctl rollback -i \(lab.inventory) --playbooks \(lab.playbooks)`"), "\(broken.stdout)")
        let app1 = try #require(brokenReport.hosts.first { $0.host == "app1" })
        #expect(app1.status == .failed && app1.outOfRotation == ["proxy"])
        #expect(brokenReport.hosts.first { $0.host == "app2" }?.status == .notStarted)
        #expect(brokenLoad.failed == 0, "requests failed while a broken release stopped the rollout: \(brokenLoad.errors.prefix(10))")
        // app1 served r1 until it was taken out; the broken r2 never answered a request.
        #expect(brokenLoad.revisions.values.allSatisfy { Set($0.keys) == ["r1"] }, "\(brokenLoad.revisions)")
        #expect(lab.servedRevisions() == ["app2": ["r1"]])

        // The fix: one deploy brings app1 back (onto the fixed release) and rolls app2 too.
        try lab.writeApp(revision: "r3")
        var fixRun: (LocalResult, RunReport)?
        let fixLoad = try underLoad("fix") { fixRun = try deploy("fix.json") }
        #expect(fixRun?.0.status == 0, "\(fixRun?.0.stdout ?? "")")
        #expect(fixLoad.failed == 0, "requests failed while fixing: \(fixLoad.errors.prefix(10))")
        #expect(lab.servedRevisions() == ["app1": ["r3"], "app2": ["r3"]])

        // An nginx-only change: no server is taken out, nginx reloads once.
        try lab.writeInventory(app2Weight: 2)
        let (weights, weightsReport) = try deploy("weights.json")
        #expect(weights.status == 0, "\(weights.stdout)")
        #expect(turns(weightsReport).values.allSatisfy { !$0.takenOut })
        let reloads = weightsReport.hosts.first { $0.host == "proxy" }?.steps.filter { $0.handler && $0.name == "reload nginx" && $0.status == .changed }
        #expect(reloads?.count == 1)

        // Rollback under load: every server back on r1, the last release that was healthy
        // before r3 (the broken r2 never counts), one server after the other, nothing lost.
        var rollbackRun: (LocalResult, RunReport)?
        let rollbackLoad = try underLoad("rollback") {
            let run = try lab.labctl(["rollback", "-i", lab.inventory, "--playbooks", lab.playbooks, "--json", lab.folder.file("rollback.json")])
            rollbackRun = (run, try lab.report(lab.folder.file("rollback.json")))
        }
        let (rollback, rollbackReport) = try #require(rollbackRun)
        #expect(rollback.status == 0, "\(rollback.stdout)")
        #expect(rollbackLoad.failed == 0, "requests failed during the rollback: \(rollbackLoad.errors.prefix(10))")
        #expect(lab.servedRevisions() == ["app1": ["r1"], "app2": ["r1"]])
        let back = turns(rollbackReport)
        let back1 = try #require(back["app1"]), back2 = try #require(back["app2"])
        #expect(back1.takenOut && back2.takenOut && back1.endSecond <= back2.startSecond, "\(back)")
        let verifyBack = try lab.labctl(["verify", "-i", lab.inventory])
        #expect(verifyBack.status == 0, "\(verifyBack.stdout)")
        // A second rollback changes nothing.
        let twice = try lab.labctl(["rollback", "-i", lab.inventory, "--playbooks", lab.playbooks, "--json", lab.folder.file("twice.json")])
        let twiceChanged = try lab.report(lab.folder.file("twice.json")).changedCount
        #expect(twice.status == 0 && twiceChanged == 0, "\(twice.stdout)")

        // Deploy moves forward again onto r3, whose release is still on both servers: nothing
        // is staged or installed again, only the switch.
        let (forward, forwardReport) = try deploy("forward.json")
        #expect(forward.status == 0, "\(forward.stdout)")
        #expect(lab.servedRevisions() == ["app1": ["r3"], "app2": ["r3"]])
        for host in forwardReport.hosts where host.host.hasPrefix("app") {
            let changed = Set(host.steps.filter { $0.status == .changed }.map(\.name))
            #expect(changed.allSatisfy { !$0.hasPrefix("a release made") && !$0.hasPrefix("the release's packages") && !$0.hasPrefix("the app from") }, "\(host.host): \(changed)")
            #expect(changed.contains { $0.hasPrefix("the new release goes live") }, "\(host.host): \(changed)")
        }
        // Old releases go: at most the 3 last healthy ones plus current, previous and staged.
        let kept = try lab.inside("app1", "ls /opt/wayshub/releases | wc -l").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(kept) ?? 99) <= 3, "app1 keeps \(kept) releases")
    }
}
