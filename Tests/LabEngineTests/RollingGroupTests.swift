import Foundation
import LabSpec
import SSH
import Testing
@testable import LabEngine

/// Rolling groups (`steps:` with `serial:`) over real shells: batches in inventory order, each
/// finishing before the next, the whole group between what comes before and after it, a
/// failed batch stopping the rollout, and the rotation around each serving host's turn.
extension RunnerTests {
    var log: String { scratch.file("log") }
    var logLines: [String] { (scratch.read("log") ?? "").split(separator: "\n").map(String.init) }

    /// A rotation that only logs who went out and came back in.
    var logOnlyRotation: String {
        """
                rotation:
                  via: proxy
                  take_out: "echo out {{host.name}} >> \(log)"
                  put_back: "echo in {{host.name}} >> \(log)"
            """
    }

    /// Each group step logs its start and end around a pause, so overlapping turns would interleave.
    func rolling(serial: Int = 1, maxFail: Int? = nil, rotation: String = "", failOn: String = "none") -> String {
        """
        steps:
          - name: before
            hosts: proxy
            command: "sleep 0.3; echo before >> \(log)"
          - name: the app, in turns
            hosts: app
            serial: \(serial)
        \(maxFail.map { "    max_fail: \($0)" } ?? "")
        \(rotation)
            steps:
              - name: update
                file: { path: "{{vars.root}}/version", content: "2\\n" }
                notify: restart
              - name: check
                command: { run: "echo {{host.name}} is broken >&2; false", unless: "test {{host.name}} != \(failOn)" }
          - name: after
            hosts: proxy
            command: "echo after >> \(log)"
        handlers:
          - name: restart
            command: "echo start {{host.name}} >> \(log); sleep 0.2; echo end {{host.name}} >> \(log)"
        """
    }

    @Test func aRollingGroupRunsItsHostsOneBatchAtATimeBetweenWhatComesBeforeAndAfter() async throws {
        let book = try playbook(rolling())
        let report = await runner(["proxy", "app1", "app2", "app3"]).run(book)
        #expect(report.exitCode == .ok, "\(report.hosts.map { $0.error ?? "" })")
        #expect(logLines == ["before", "start app1", "end app1", "start app2", "end app2", "start app3", "end app3", "after"])
        let turns = report.hosts.filter { $0.host != "proxy" }.compactMap(\.turns.first)
        #expect(turns.count == 3)
        #expect(turns.allSatisfy { $0.inTurn })
        for (earlier, later) in zip(turns, turns.dropFirst()) {
            #expect(earlier.endSecond <= later.startSecond, "turns overlap: \(turns)")
            #expect(earlier.endedAt <= later.startedAt)
        }
    }

    @Test func twoAtATime() async throws {
        let report = await runner(["proxy", "app1", "app2", "app3"]).run(try playbook(rolling(serial: 2)))
        #expect(report.exitCode == .ok)
        let lines = logLines
        // app1 and app2 together, app3 after both.
        #expect(Set(lines[1...4]) == ["start app1", "end app1", "start app2", "end app2"])
        #expect(Array(lines[5...]) == ["start app3", "end app3", "after"])
    }

    @Test func aFailedBatchStopsTheRolloutAndTheRestAreNotStarted() async throws {
        let report = await runner(["proxy", "app1", "app2", "app3"]).run(try playbook(rolling(failOn: "app2")))
        #expect(report.exitCode == .hostFailed)
        let status = Dictionary(uniqueKeysWithValues: report.hosts.map { ($0.host, $0.status) })
        #expect(status == ["proxy": .ok, "app1": .ok, "app2": .failed, "app3": .notStarted])
        let app3 = try #require(report.hosts.first { $0.host == "app3" })
        #expect(app3.error == "not started: the rollout of 'the app, in turns' stopped after app2 failed")
        #expect(app3.steps.isEmpty)
        #expect(scratch.read("app3/version") == nil)
        #expect(Recap.render(report).contains("not started: the rollout"))
        // The proxy still finishes its own steps after the group.
        #expect(logLines.last == "after")

        // With max_fail: 1 a failed host does not stop the others.
        try? FileManager.default.removeItem(atPath: log)
        let tolerant = await runner(["proxy", "app1", "app2", "app3"]).run(try playbook(rolling(maxFail: 1, failOn: "app2")))
        #expect(tolerant.hosts.first { $0.host == "app3" }?.status == .ok)
    }

    /// Only a serving host with something to change is taken out of rotation (on the proxy,
    /// with its own variables) and put back after its handlers; a host not serving yet goes at
    /// once; a run with nothing to change touches no rotation.
    @Test func theRotationTakesOutOnlyServingHostsWithWork() async throws {
        let rotationLog = scratch.file("rotation")
        let rotation = """
                rotation:
                  via: proxy
                  serving: "test -e {{vars.root}}/serving"
                  take_out: "echo out {{host.name}} >> \(rotationLog); echo out {{host.name}} >> \(log)"
                  put_back: "echo in {{host.name}} >> \(rotationLog); echo in {{host.name}} >> \(log)"
            """
        let book = try playbook(rolling(rotation: rotation))
        let sessions = Sessions()
        let names = ["proxy", "app1", "app2", "app3"]
        let runner = runner(names, sessions: sessions)
        for host in ["app1", "app2"] {
            FileManager.default.createFile(atPath: scratch.file("\(host)/serving"), contents: nil)
        }
        let first = await runner.run(book)
        #expect(first.exitCode == .ok, "\(first.hosts.map { $0.error ?? "" })")
        #expect(scratch.read("rotation") == "out app1\nin app1\nout app2\nin app2\n")
        let lines = logLines.filter { $0.hasSuffix("app1") || $0.hasSuffix("app2") }
        #expect(lines == ["out app1", "start app1", "end app1", "in app1", "out app2", "start app2", "end app2", "in app2"])
        let app3 = try #require(first.hosts.first { $0.host == "app3" }?.turns.first)
        #expect(!app3.inTurn && !app3.takenOut)
        #expect(first.hosts.first { $0.host == "app1" }?.steps.contains { $0.name == "take app1 out of rotation on proxy" && $0.status == .changed } == true)

        let second = await runner.run(book)
        #expect(second.hosts.filter { $0.host != "proxy" }.allSatisfy { $0.count(.changed) == 0 })
        // The look before the turn (steps and `serving` together) is the group's only probe.
        #expect(second.hosts.filter { $0.host != "proxy" }.allSatisfy { $0.roundTrips == 1 }, "\(second.hosts.map { ($0.host, $0.roundTrips) })")
        #expect(scratch.read("rotation") == "out app1\nin app1\nout app2\nin app2\n")
    }

    /// A serving host whose update fails stays out of rotation and says so; the rollout stops.
    @Test func aHostThatFailsItsTurnStaysOutOfRotation() async throws {
        let rotation = logOnlyRotation
        let report = await runner(["proxy", "app1", "app2", "app3"]).run(try playbook(rolling(rotation: rotation, failOn: "app1")))
        let app1 = try #require(report.hosts.first { $0.host == "app1" })
        #expect(app1.status == .failed)
        #expect(app1.outOfRotation == ["proxy"])
        #expect(app1.error?.hasSuffix("app1 is out of rotation on proxy until a run that succeeds on it puts it back") == true, "\(app1.error ?? "")")
        #expect(!logLines.contains("in app1"))
        #expect(report.hosts.filter { ["app2", "app3"].contains($0.host) }.allSatisfy { $0.status == .notStarted })
    }

    /// One host in the group: nothing could serve while it is out, so it is not taken out, and
    /// the report says the site is down meanwhile.
    @Test func theOnlyHostOfAGroupIsNotTakenOut() async throws {
        let rotation = logOnlyRotation
        let report = await runner(["proxy", "app1"]).run(try playbook(rolling(rotation: rotation)))
        #expect(report.exitCode == .ok)
        #expect(!logLines.contains("out app1"))
        let note = report.hosts.first { $0.host == "app1" }?.steps.first { $0.type == "rotation" }
        #expect(note?.message?.contains("the site is down until it is back") == true)

        // Alone in the run because of --limit: not taken out either, and it says why.
        try? FileManager.default.removeItem(atPath: log)
        try? FileManager.default.removeItem(atPath: scratch.file("app1/version"))
        let limited = await runner(["proxy", "app1", "app2"]) { $0.limit = ["app1"] }.run(try playbook(rolling(rotation: rotation)))
        #expect(limited.exitCode == .ok, "\(limited.hosts.map { $0.error ?? "" })")
        #expect(!logLines.contains("out app1"))
        let limitedNote = limited.hosts.first { $0.host == "app1" }?.steps.first { $0.type == "rotation" }
        #expect(limitedNote?.message?.hasPrefix("the group's other hosts are not in this run (--limit)") == true, "\(limitedNote?.message ?? "")")
    }
    /// A handler the group notifies, owed by a run that stopped in app1's turn, runs in app1's
    /// next turn (out of rotation), not at the end of the steps before the group, where app1 is
    /// still serving.
    @Test func aHandlerOwedToTheGroupRunsInTheTurnNotBeforeIt() async throws {
        func book(failOn: String) throws -> Playbook {
            try playbook("""
                steps:
                  - name: staged beside what runs
                    hosts: app
                    command: "echo staged {{host.name}} >> \(log)"
                  - name: the app, in turns
                    hosts: app
                \(logOnlyRotation)
                    steps:
                      - name: update
                        file: { path: "{{vars.root}}/version", content: "2\\n" }
                        notify: restart
                      - name: check
                        command: { run: "echo {{host.name}} is broken >&2; false", unless: "test {{host.name}} != \(failOn)" }
                handlers:
                  - name: restart
                    command: "echo start {{host.name}} >> \(log)"
                """)
        }
        let names = ["proxy", "app1", "app2"]
        let failed = await runner(names).run(try book(failOn: "app1"))
        #expect(failed.hosts.first { $0.host == "app1" }?.pendingHandlers == ["restart"])
        try? FileManager.default.removeItem(atPath: log)
        let repaired = await runner(names).run(try book(failOn: "none"))
        #expect(repaired.exitCode == .ok, "\(repaired.hosts.map { $0.error ?? "" })")
        let app1 = logLines.filter { $0.hasSuffix("app1") }
        #expect(app1 == ["staged app1", "out app1", "start app1", "in app1"], "\(logLines)")
    }
}

