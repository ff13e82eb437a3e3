import Foundation
import LabSpec
@testable import LabVerify
import Testing
import TestSupport

/// One GET with a client of its own (shut down before returning).
func getOnce(_ address: String, _ port: Int, path: String = "/", host: String? = nil) async -> HTTPProbe {
    let client = HTTPProber.makeClient(timeout: .seconds(5))
    let probe = await HTTPProber(client: client, timeout: .seconds(5)).get(address: address, port: port, path: path, hostHeader: host)
    try? await client.shutdown()
    return probe
}

/// Checks 1, 3, 4 and 5, the drill and the load against real nginx and real stand-in apps on
/// loopback. Serialized: the drill's timing must not compete with another lab's requests.
@Suite(.serialized, .enabled(if: LoopbackLab.canRun, "needs node (Debian: nodejs) and nginx"))
struct LoopbackVerifyTests {
    func verify(_ lab: LoopbackLab, _ options: VerifyOptions, services: (any ServiceController)? = nil) async -> VerifyReport {
        await Verifier(inventory: lab.inventory, options: options, commandRunner: NoCommands(), serviceController: services).run()
    }

    func results(_ report: VerifyReport, _ kind: CheckKind) -> [CheckResult] { report.checks.filter { $0.kind == kind } }

    @Test("a healthy lab passes: both apps answer, the domain answers, requests spread over both (told apart by X-Upstream)")
    func healthyLab() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        let report = await verify(lab, VerifyOptions(requests: 50, checks: CheckKind.httpOnly))

        #expect(report.failures.isEmpty, "\(report.table())")
        #expect(report.exitCode == 0)
        #expect(results(report, .appDirect).map(\.host) == ["app1", "app2", nil])
        #expect(results(report, .appDirect).allSatisfy { $0.status == .pass })
        #expect(results(report, .appDirect).last?.summary == "version 1.0.0 on app1, app2")
        let domain = try #require(results(report, .domain).first)
        #expect(domain.status == .pass)
        #expect(domain.evidence.httpStatus == 200)
        #expect(domain.evidence.bodyExcerpt == "<title>WaysHub</title>")
        // wayshub.test is in no hosts file here: reported, not failed.
        #expect(results(report, .resolution).first?.status == .info)

        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.status == .pass, "\(balancing.summary)")
        let shares = try #require(balancing.distribution)
        #expect(shares.map(\.server) == ["app1", "app2"])
        #expect(shares.map(\.count).reduce(0, +) == 50)
        #expect(shares.allSatisfy { $0.count >= 10 }, "\(shares)")
        #expect(balancing.latency?.errors == 0)
    }

    @Test("the upstream nginx runs is judged, not the inventory's: a round-robin nginx under a least_conn inventory fails with both sides shown")
    func upstreamFromNginx() async throws {
        let lab = try LoopbackLab(method: .roundRobin)
        defer { lab.shutDown() }
        let options = VerifyOptions(requests: 40, checks: [.nginx, .balancing])
        let matching = await Verifier(inventory: lab.inventory, options: options, commandRunner: LocalNginx(lab: lab)).run()
        let fine = try #require(matching.checks.first { $0.name == "nginx's upstream matches the inventory on proxy" })
        #expect(fine.status == .pass, "\(fine.summary)")
        #expect(fine.summary == "upstream wayshub_app: round_robin, 2 servers as the inventory says")

        lab.inventoryMethod = .leastConn
        let report = await Verifier(inventory: lab.inventory, options: options, commandRunner: LocalNginx(lab: lab)).run()
        let upstream = try #require(report.checks.first { $0.name == "nginx's upstream matches the inventory on proxy" })
        #expect(upstream.status == .fail)
        #expect(upstream.summary.hasPrefix("nginx runs other load balancing than the inventory says: method: nginx runs round_robin, the inventory says least_conn"), "\(upstream.summary)")
        #expect(upstream.evidence.details.first?.hasPrefix("nginx:         round_robin: 127.0.0.") == true, "\(upstream.evidence.details)")
        #expect(upstream.evidence.details.last?.hasPrefix("the inventory: least_conn: ") == true)
        // The spread is judged by what nginx runs.
        let balancing = try #require(report.checks.first { $0.kind == .balancing })
        #expect(balancing.name.hasPrefix("load balancing (round_robin"), "\(balancing.name)")
        #expect(report.exitCode == 1)
    }

    @Test("app servers on different releases fail the version check, which names each server's version")
    func aMixedFleetFails() async throws {
        let lab = try LoopbackLab(versions: ["app2": "2.0.0"])
        defer { lab.shutDown() }
        let report = await verify(lab, VerifyOptions(requests: 20, checks: [.appDirect, .domain]))
        let versions = try #require(results(report, .appDirect).first { $0.name == "every app server runs one version" })
        #expect(versions.status == .fail)
        #expect(versions.summary == "the app servers run different versions (app1 1.0.0, app2 2.0.0): finish the rollout with labctl deploy")
        #expect(report.failures.map(\.name) == ["every app server runs one version"])
        #expect(results(report, .appDirect).first { $0.host == "app2" }?.summary.hasSuffix(", version 2.0.0") == true)
    }

    @Test("the apps' own X-Served-By names identify them when nginx adds no X-Upstream")
    func servedByIdentifies() async throws {
        let lab = try LoopbackLab(namedApps: true, upstreamHeader: false)
        defer { lab.shutDown() }
        let report = await verify(lab, VerifyOptions(requests: 20, checks: [.appDirect, .domain, .balancing]))
        #expect(report.failures.isEmpty, "\(report.table())")
        #expect(results(report, .appDirect).filter { $0.host != nil }.map(\.evidence.server) == ["app1-box", "app2-box"])
        let shares = try #require(results(report, .balancing).first?.distribution)
        #expect(shares.map(\.server) == ["app1", "app2"])
        #expect(shares.allSatisfy { $0.count > 0 })
    }

    @Test("without the apps' direct answers nor X-Upstream, responses cannot be attributed and check 5 says so")
    func unidentifiedResponsesFail() async throws {
        let lab = try LoopbackLab(upstreamHeader: false)
        defer { lab.shutDown() }
        // Both apps say this machine's host name: no way to tell them apart.
        let report = await verify(lab, VerifyOptions(requests: 10, checks: [.appDirect, .balancing]))
        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.status == .fail)
        #expect(balancing.summary.contains("did not say which app server answered"), "\(balancing.summary)")
        #expect(report.exitCode == 1)
    }

    @Test("one app stopped: requests still succeed through proxy_next_upstream, and check 5 names the missing server")
    func stoppedAppIsNamed() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        lab.stopApp("app2")
        let report = await verify(lab, VerifyOptions(requests: 30, checks: CheckKind.httpOnly))

        let direct = results(report, .appDirect)
        #expect(direct.first { $0.host == "app1" }?.status == .pass)
        let app2 = try #require(direct.first { $0.host == "app2" })
        #expect(app2.status == .fail)
        #expect(app2.summary.contains("connection refused"), "\(app2.summary)")

        #expect(results(report, .domain).first?.status == .pass)
        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.status == .fail)
        #expect(balancing.summary.hasPrefix("app2 answered none of 30 requests ("), "\(balancing.summary)")
        #expect(balancing.latency?.errors == 0, "every request must still succeed: \(balancing.summary)")
        #expect(balancing.distribution?.first { $0.server == "app1" }?.count == 30)
        #expect(report.exitCode == 1)
        let table = report.table()
        #expect(table.contains("FAIL"))
        #expect(table.contains("app2 answered none"))
    }

    @Test("nginx stopped: check 4 fails and says nothing listens")
    func nginxStopped() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        lab.stopNginx()
        let report = await verify(lab, VerifyOptions(requests: 5, checks: [.appDirect, .domain]))
        let domain = try #require(results(report, .domain).first)
        #expect(domain.status == .fail)
        #expect(domain.summary.contains("is nginx running?"), "\(domain.summary)")
        #expect(results(report, .appDirect).allSatisfy { $0.status == .pass })
    }

    @Test("ip_hash: every request of this client goes to one server, and that passes")
    func ipHashSticky() async throws {
        let lab = try LoopbackLab(method: .ipHash)
        defer { lab.shutDown() }
        let report = await verify(lab, VerifyOptions(requests: 20, checks: [.appDirect, .balancing]))
        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.status == .pass, "\(balancing.summary)")
        #expect(balancing.distribution?.filter { $0.count > 0 }.map(\.count) == [20])
    }

    @Test("a backup server stays idle while the others live, and the drill with it passes")
    func backupIdle() async throws {
        let lab = try LoopbackLab(backup: true)
        defer { lab.shutDown() }
        let services = LoopbackServices(lab: lab)
        let report = await verify(lab, VerifyOptions(failover: true, requests: 20, checks: [.appDirect, .balancing]), services: services)
        #expect(report.failures.isEmpty, "\(report.table())")
        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.distribution?.map(\.server) == ["app1", "app2", "app3"])
        #expect(balancing.distribution?.last?.count == 0)
        #expect(balancing.distribution?.last?.backup == true)
        #expect(results(report, .failover).map(\.host) == ["app1", "app2", "app3"])
        // With app1 down, app2 is still a primary: the backup stays idle.
        #expect(results(report, .failover).first?.distribution?.last?.count == 0)
        #expect(results(report, .failover).last?.summary.contains("answered directly again") == true)
    }

    @Test("a backup server that gets requests while the others live fails check 5, naming it")
    func busyBackupNamed() async throws {
        let lab = try LoopbackLab(backup: true)
        defer { lab.shutDown() }
        lab.stopApp("app1")
        lab.stopApp("app2")
        // nginx sends to app3 because the primaries are down; the inventory says app1 and app2
        // should serve, so the check names both missing and the busy backup.
        let report = await verify(lab, VerifyOptions(requests: 10, checks: [.balancing]))
        let balancing = try #require(results(report, .balancing).first)
        #expect(balancing.status == .fail)
        #expect(balancing.summary.contains("backup server app3 answered 10 of 10 requests; nginx uses a backup only when every other server is down"), "\(balancing.summary)")
        #expect(balancing.summary.contains("app1 answered none of 10 requests"))
        #expect(balancing.latency?.errors == 0)
    }

    @Test("the failover drill under load: every server stopped in turn, no request fails, all back after")
    func drillUnderLoad() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        let services = LoopbackServices(lab: lab)
        let options = VerifyOptions(failover: true, loadRate: 40, requests: 20, rejoinTimeout: .seconds(20), checks: [.appDirect, .domain])
        let report = await verify(lab, options, services: services)

        #expect(report.failures.isEmpty, "\(report.table())")
        if !report.failures.isEmpty { print((try? String(contentsOfFile: lab.directory.file("nginx-error.log"), encoding: .utf8)) ?? "") }
        let drills = results(report, .failover)
        #expect(drills.map(\.host) == ["app1", "app2"])
        for drill in drills {
            #expect(drill.status == .pass, "\(drill.summary)")
            #expect(drill.distribution?.first { $0.server == drill.host }?.count == 0)
            #expect(drill.distribution?.first { $0.server != drill.host }?.count == 20)
            #expect(drill.summary.contains("back in rotation"), "\(drill.summary)")
        }
        #expect(services.log == ["stop app1", "start app1", "stop app2", "start app2"])
        let load = try #require(results(report, .load).first)
        #expect(load.status == .pass, "\(load.summary)")
        let latency = try #require(load.latency)
        #expect(latency.errors == 0)
        #expect(latency.requests > 10)
        #expect(latency.p50 != nil && latency.p99 != nil)
        // The timeline: every second of the drill, each request counted once, and each server's
        // down, restored and back in that order.
        let timeline = try #require(report.timeline)
        #expect(timeline.servers == ["app1", "app2"])
        #expect(timeline.buckets.map(\.start) == timeline.buckets.indices.map(Double.init))
        let answered = timeline.buckets.reduce(0) { $0 + $1.answered.values.reduce(0, +) + $1.errors }
        #expect(answered == latency.requests + drills.reduce(0) { $0 + ($1.distribution?.reduce(0) { $0 + $1.count } ?? 0) })
        #expect(timeline.events.map { "\($0.kind.rawValue) \($0.server)" } == [
            "down app1", "restored app1", "back app1", "down app2", "restored app2", "back app2",
        ])
        #expect(timeline.events.map(\.at) == timeline.events.map(\.at).sorted())
        #expect(timeline.buckets.allSatisfy { $0.errors == 0 && Set($0.answered.keys).isSubset(of: ["app1", "app2"]) })
        #expect(lab.isRunning("app1") && lab.isRunning("app2"))
        #expect(await getOnce("127.0.0.2", lab.appPort).succeeded)
        #expect(await getOnce("127.0.0.3", lab.appPort).succeeded)
    }

    @Test("a drill right after a server was down passes: failures nginx workers recorded before are waited out")
    func drillAfterRecentFailure() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        lab.stopApp("app2")
        // Requests while app2 is down make nginx's workers mark it failed for fail_timeout.
        let before = await verify(lab, VerifyOptions(requests: 10, checks: [.balancing]))
        #expect(before.checks.first?.latency?.errors == 0)
        #expect(before.checks.first?.distribution?.first { $0.server == "app2" }?.count == 0)
        try lab.startApp("app2", wait: true)
        let services = LoopbackServices(lab: lab)
        let report = await verify(lab, VerifyOptions(failover: true, requests: 10, checks: []), services: services)
        #expect(report.checks.map(\.status) == [.pass, .pass], "\(report.table())")
        #expect(services.log == ["stop app1", "start app1", "stop app2", "start app2"])
    }

    @Test("a server already down: the drill stops nothing and says which server is down")
    func drillRefusesUnhealthyLab() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        lab.stopApp("app2")
        let services = LoopbackServices(lab: lab)
        let report = await verify(lab, VerifyOptions(failover: true, loadRate: 20, requests: 10, checks: []), services: services)
        #expect(services.log.isEmpty)
        #expect(report.checks.map(\.status) == [.skipped, .fail, .skipped], "\(report.table())")
        #expect(report.checks[0].summary == "not taken down: app2 is already down")
        #expect(report.checks[1].summary == "app2 does not answer on :\(lab.appPort), so the drill took no server down")
        #expect(report.checks[2].kind == .load)
        #expect(report.exitCode == 1)
    }

    @Test("cancelling the drill (Ctrl-C) while a server is down starts it again before run returns")
    func cancelledDrillRestarts() async throws {
        let lab = try LoopbackLab()
        defer { lab.shutDown() }
        let (stops, continuation) = AsyncStream.makeStream(of: String.self)
        let services = LoopbackServices(lab: lab, onStop: { continuation.yield($0) })
        let inventory = lab.inventory
        let task = Task {
            await Verifier(
                inventory: inventory, options: VerifyOptions(failover: true, requests: 200, checks: [.appDirect]),
                commandRunner: NoCommands(), serviceController: services
            ).run()
        }
        var iterator = stops.makeAsyncIterator()
        let stopped = await iterator.next()
        #expect(stopped == "app1")
        #expect(!lab.isRunning("app1"))
        task.cancel()
        let report = await task.value

        #expect(report.interrupted)
        #expect(report.exitCode != 0)
        #expect(services.log == ["stop app1", "start app1"])
        #expect(lab.isRunning("app1"))
        let drill = try #require(report.checks.first { $0.kind == .failover })
        #expect(drill.status == .fail)
        #expect(drill.evidence.details.contains { $0.contains("again (cleanup)") }, "\(drill.evidence.details)")
        // The restarted app answers again.
        var answered = false
        for _ in 0..<50 where !answered {
            answered = await getOnce("127.0.0.2", lab.appPort).succeeded
            if !answered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answered)
    }
}
