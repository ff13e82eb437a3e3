import Foundation
import LabSpec
import SSH
import Testing
@testable import LabEngine

/// The runner over real shells on this machine (one `LocalShellSession` per host, each host
/// working under its own directory). The same flows over SSH are in the end-to-end suite.
@Suite struct RunnerTests {
    let scratch = Scratch()

    func targets(_ names: [String], unreachable: Set<String> = []) -> [RunTarget] {
        let facts = names.map {
            HostFacts(name: $0, address: "127.0.0.1", roles: [$0 == "proxy" ? "proxy" : "app"], vars: ["root": .string(scratch.file($0))])
        }
        for name in names { try? FileManager.default.createDirectory(atPath: scratch.file(name), withIntermediateDirectories: true) }
        return facts.map {
            RunTarget(
                facts: $0, ssh: SSHOptions(endpoint: SSHEndpoint(host: "127.0.0.1", user: "root"), credentials: []), become: nil,
                context: .forHost($0, allHosts: facts, globals: ["domain": .string("wayshub.lab")]),
                // Each "host" keeps its own pending handlers: they are one machine here.
                stateDirectory: scratch.file("state/" + $0.name))
        }
    }

    final class Sessions: @unchecked Sendable {
        let lock = NSLock()
        var byHost: [String: LocalShellSession] = [:]
        func session(_ host: String) -> LocalShellSession {
            lock.withLock {
                if let s = byHost[host] { return s }
                let s = LocalShellSession()
                byHost[host] = s
                return s
            }
        }
    }

    func runner(_ names: [String], options: (inout RunOptions) -> Void = { _ in }, unreachable: Set<String> = [], sessions: Sessions = Sessions()) -> PlaybookRunner {
        var runOptions = RunOptions(playbookDirectory: scratch.path, backupDirectory: scratch.file("backups"))
        options(&runOptions)
        return PlaybookRunner(targets: targets(names), options: runOptions) { target throws(SSHError) in
            if unreachable.contains(target.name) {
                throw SSHError(host: target.name, operation: .connect, kind: .connectionRefused)
            }
            return sessions.session(target.name)
        }
    }

    func playbook(_ yaml: String) throws -> Playbook {
        try PlaybookParser.parse(yaml: yaml, file: scratch.file("site.yml"))
    }

    static let site = """
        steps:
          - name: config dir
            hosts: all
            directory: { path: "{{vars.root}}/conf.d", mode: "0755" }
          - name: site config
            hosts: all
            file:
              path: "{{vars.root}}/conf.d/site.conf"
              content: |
                server_name {{domain}};
                host {{host.name}};
            notify: reload
          - name: base nginx.conf
            hosts: all
            command: { run: "printf 'http {\\n}\\n' > {{vars.root}}/nginx.conf", creates: "{{vars.root}}/nginx.conf" }
          - name: include block
            hosts: all
            block: { path: "{{vars.root}}/nginx.conf", block: "  include conf.d/*;", insert_after: "^http" }
            notify: reload
          - name: greet
            hosts: all
            command: { run: "echo hello from {{host.name}}", creates: "{{vars.root}}/greeted" }
          - name: mark greeted
            hosts: all
            command: { run: "touch {{vars.root}}/greeted", creates: "{{vars.root}}/greeted" }
        handlers:
          - name: reload
            command: "echo reloaded >> {{vars.root}}/reloads"
        """

    @Test func firstRunChangesSecondRunIsOneRoundTripAndChangesNothing() async throws {
        let book = try playbook(Self.site)
        let sessions = Sessions()
        let first = await runner(["app1", "app2"], sessions: sessions).run(book)
        #expect(first.exitCode == .ok)
        for host in first.hosts {
            #expect(host.status == .ok)
            #expect(host.steps.map(\.status) == [.changed, .changed, .changed, .changed, .changed, .changed, .changed])
            #expect(host.steps.last?.handler == true)
            #expect(host.steps[4].output == "hello from \(host.host)")
        }
        #expect(scratch.read("app1/conf.d/site.conf") == "server_name wayshub.lab;\nhost app1;\n")
        #expect(scratch.read("app2/conf.d/site.conf") == "server_name wayshub.lab;\nhost app2;\n")
        // The block step found the file the command before it made: re-probed after that change.
        #expect(scratch.read("app1/nginx.conf") == "http {\n# BEGIN LABCTL MANAGED BLOCK\n  include conf.d/*;\n# END LABCTL MANAGED BLOCK\n}\n")
        // Two steps notified the handler: it ran once.
        #expect(scratch.read("app1/reloads") == "reloaded\n")

        let second = await runner(["app1", "app2"], sessions: sessions).run(book)
        #expect(second.exitCode == .ok)
        #expect(second.changedCount == 0)
        #expect(second.hosts.allSatisfy { $0.roundTrips == 1 && $0.steps.count == 6 })
        #expect(scratch.read("app1/reloads") == "reloaded\n")
        #expect(sessions.session("app1").commands.all.count == first.hosts[0].roundTrips + 1)
    }

    @Test func aConvergedPlaybookIsOneRoundTripPerHost() async throws {
        let yaml = """
            steps:
              - { name: dir, hosts: all, directory: { path: "{{vars.root}}/d" } }
              - { name: file, hosts: all, file: { path: "{{vars.root}}/d/f", content: "x\\n" }, notify: h }
              - { name: line, hosts: all, line: { path: "{{vars.root}}/d/g", line: "a", create: true }, notify: h }
            handlers:
              - { name: h, command: "echo ran >> {{vars.root}}/handler" }
            """
        let book = try playbook(yaml)
        let sessions = Sessions()
        let first = await runner(["app1", "app2", "app3"], sessions: sessions).run(book)
        #expect(first.hosts.allSatisfy { $0.count(.changed) == 4 })
        // probe + one apply (with re-probe) per changed step + the handler's probe and apply.
        #expect(first.hosts.allSatisfy { $0.roundTrips == 1 + 3 + 2 })
        let second = await runner(["app1", "app2", "app3"], sessions: sessions).run(book)
        #expect(second.changedCount == 0)
        #expect(second.hosts.allSatisfy { $0.roundTrips == 1 })
        #expect(second.hosts.allSatisfy { $0.probeSeconds > 0 && $0.probeSeconds <= $0.seconds })
        #expect(second.hosts.allSatisfy { $0.steps.map(\.status) == [.ok, .ok, .ok] })
        #expect(scratch.read("app2/handler") == "ran\n", "the handler ran once, and not on the run without changes")
    }

    @Test func flushHandlersRunsTheNotifiedHandlersThere() async throws {
        let yaml = """
            steps:
              - { name: code, hosts: all, file: { path: "{{vars.root}}/code", content: "v1" }, notify: [install, restart] }
              - { name: now, hosts: all, flush_handlers: true }
              - { name: check, hosts: all, command: "cat {{vars.root}}/log >> {{vars.root}}/seen" }
              - { name: config, hosts: all, file: { path: "{{vars.root}}/config", content: "c" }, notify: restart }
            handlers:
              - { name: install, command: "echo install >> {{vars.root}}/log" }
              - { name: restart, command: "echo restart >> {{vars.root}}/log" }
            """
        let report = await runner(["app1"]).run(try playbook(yaml))
        #expect(report.hosts[0].steps.map { "\($0.name)\($0.handler ? "*" : "")" } == ["code", "install*", "restart*", "check", "config", "restart*"])
        // The step after the flush saw both handlers' work; the restart ran again for the later change.
        #expect(scratch.read("app1/seen") == "install\nrestart\n")
        #expect(scratch.read("app1/log") == "install\nrestart\nrestart\n")
    }

    /// Probes larger than one command-line argument may be (128 KiB on Linux) still work.
    @Test func aLongPlaybookProbesInOneRoundTrip() async throws {
        let count = 400
        let steps = (0..<count).map { "- { name: d\($0), hosts: all, directory: { path: \"{{vars.root}}/directory-number-\($0)\" } }" }
        let book = try playbook(steps.joined(separator: "\n") + "\n")
        for index in 1..<count {
            try FileManager.default.createDirectory(atPath: scratch.file("app1/directory-number-\(index)"), withIntermediateDirectories: true)
        }
        let runner = runner(["app1"])
        let operations = book.steps.enumerated().compactMap { index, step in
            (try? runner.compiler.operation(for: step.action, context: runner.targets[0].context)).map { (id: index, operation: $0) }
        }
        try #require(ProbeScript(steps: operations).script.utf8.count > 131_072)
        let report = await runner.run(book)
        #expect(report.exitCode == .ok, "\(report.hosts[0].error ?? "")")
        #expect(report.hosts[0].count(.changed) == 1)
        #expect(report.hosts[0].count(.ok) == count - 1)
        // The probe, the change, then (too big to ride along) the re-probe on its own.
        #expect(report.hosts[0].roundTrips == 3)
        #expect(await runner.run(book).hosts[0].roundTrips == 1)
    }

    @Test func aHandlerWithAFalseConditionIsSkipped() async throws {
        let yaml = """
            steps:
              - { name: a, hosts: all, command: "true", notify: [h1, h2] }
            handlers:
              - { name: h1, when: "host.name == 'nobody'", command: "echo h1 >> {{vars.root}}/log" }
              - { name: h2, command: "echo h2 >> {{vars.root}}/log" }
            """
        let report = await runner(["app1"]).run(try playbook(yaml))
        #expect(report.hosts[0].steps.map(\.status) == [.changed, .skipped, .changed])
        #expect(scratch.read("app1/log") == "h2\n")
    }

    @Test func checkModeChangesNothing() async throws {
        let book = try playbook(Self.site)
        let report = await runner(["app1"], options: { $0.check = true }).run(book)
        #expect(report.check)
        #expect(report.hosts[0].count(.changed) >= 3)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("app1/conf.d")))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("app1/reloads")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("app1")).isEmpty)
    }

    @Test func diffModeReportsTheDiff() async throws {
        scratch.write("app1/f", "old\n")
        let book = try playbook("- { name: f, hosts: all, file: { path: \"{{vars.root}}/f\", content: \"new\\n\" } }\n")
        let report = await runner(["app1"], options: { $0.diff = true; $0.check = true }).run(book)
        #expect(report.hosts[0].steps[0].diff == "--- \(scratch.file("app1/f"))\n+++ \(scratch.file("app1/f"))\n@@ -1 +1 @@\n-old\n+new\n")
        #expect(scratch.read("app1/f") == "old\n")
    }

    @Test func aFailingHostStopsTheOthersGoOn() async throws {
        let yaml = """
            - { name: one, hosts: all, command: "echo one >> {{vars.root}}/log" }
            - { name: boom, hosts: app2, command: "echo broken >&2; echo twice >&2; exit 3" }
            - { name: three, hosts: all, command: "echo three >> {{vars.root}}/log" }
            """
        let report = await runner(["app1", "app2"]).run(try playbook(yaml))
        #expect(report.exitCode == .hostFailed)
        #expect(report.hosts[0].status == .ok)
        #expect(report.hosts[1].status == .failed)
        #expect(report.hosts[1].error == "boom: broken\ntwice")
        #expect(report.hosts[1].steps.map(\.status) == [.changed, .failed])
        #expect(scratch.read("app1/log") == "one\nthree\n")
        #expect(scratch.read("app2/log") == "one\n")
        #expect(Recap.render(report).contains("  failed: boom: broken | twice\n"))
    }

    @Test func aProbeThatCannotStartSaysWhy() async throws {
        // A become method that fails like sudo without a password: the probe never starts.
        struct RefusingSession: HostSession {
            func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult {
                CommandResult(stdout: Data(), stderr: Data("sudo: a password is required\n".utf8), exitStatus: 1, exitSignal: nil, duration: .zero)
            }
            func close() async {}
        }
        let runner = PlaybookRunner(targets: targets(["app1"]), options: RunOptions(playbookDirectory: scratch.path)) { _ throws(SSHError) in
            RefusingSession()
        }
        let report = await runner.run(try playbook("- { name: a, hosts: all, command: 'true' }\n"))
        #expect(report.hosts[0].status == .failed)
        #expect(report.hosts[0].error == "probing the host failed: sudo: a password is required")
    }

    @Test func unreachableHostsAreReportedAsSuch() async throws {
        let book = try playbook("- { name: one, hosts: all, command: 'true' }\n")
        let report = await runner(["app1", "app2"], unreachable: ["app2"]).run(book)
        #expect(report.exitCode == .unreachable)
        #expect(report.hosts.map(\.status) == [.ok, .unreachable])
        #expect(report.hosts[1].error == "connection refused; is sshd running and listening on that port?")
    }

    @Test func whenTagsLimitAndStartAt() async throws {
        let yaml = """
            - { name: a, hosts: all, tags: [setup], command: "echo a >> {{vars.root}}/log" }
            - { name: b, hosts: all, when: "host.name == 'app1'", command: "echo b >> {{vars.root}}/log" }
            - { name: c, hosts: all, tags: [deploy], command: "echo c >> {{vars.root}}/log" }
            """
        let book = try playbook(yaml)
        let all = await runner(["app1", "app2"]).run(book)
        #expect(all.hosts[1].steps.map(\.status) == [.changed, .skipped, .changed])
        #expect(all.hosts[1].steps[1].message == "condition is false: host.name == \"app1\"")
        #expect(scratch.read("app1/log") == "a\nb\nc\n")

        _ = await runner(["app1", "app2"], options: { $0.tags = ["deploy"]; $0.limit = ["app2"] }).run(book)
        #expect(scratch.read("app1/log") == "a\nb\nc\n")
        #expect(scratch.read("app2/log") == "a\nc\nc\n")

        // --skip-tags leaves out the tagged steps, untagged ones still run.
        let skipping = await runner(["app2"], options: { $0.skipTags = ["setup"] }).run(book)
        #expect(skipping.hosts[0].steps.map(\.name) == ["b", "c"])
        #expect(scratch.read("app2/log") == "a\nc\nc\nc\n")

        let started = await runner(["app1"], options: { $0.startAt = "b" }).run(book)
        #expect(started.hosts[0].steps.map(\.name) == ["b", "c"])
        #expect(runner(["app1"], options: { $0.startAt = "bb"; $0.limit = ["app", "ap1"] }).validate(book).map(\.message) == [
            "--limit names 'ap1', which is neither a host nor a role of the inventory; did you mean 'app'?",
            "--start-at names 'bb', which is not a step of the playbook; did you mean 'b'?",
        ])
    }

    @Test func checkModeSkipsWhatDependsOnChangesItDidNotMake() async throws {
        let book = try playbook(Self.site)
        let report = await runner(["app1"], options: { $0.check = true }).run(book)
        let file = report.hosts[0].steps[1]
        #expect(file.status == .skipped)
        #expect(file.message == "cannot be checked before the changes above are made: the directory \(scratch.file("app1/conf.d")) does not exist; add a directory step before this one")
        #expect(report.exitCode == .ok)
    }

    @Test func cancellingStopsBetweenStepsAndClosesSessions() async throws {
        let yaml = """
            - { name: slow, hosts: all, command: "sleep 1; echo slept > {{vars.root}}/slow" }
            - { name: after, hosts: all, file: { path: "{{vars.root}}/after", content: "x" } }
            """
        let book = try playbook(yaml)
        let events = EventLog()
        let runner = runner(["app1", "app2"])
        let run = Task { await runner.run(book) { events.append($0) } }
        while !events.names.contains("started slow") { try await Task.sleep(for: .milliseconds(20)) }
        run.cancel()
        let report = await run.value
        #expect(report.hosts.map(\.status) == [.cancelled, .cancelled])
        #expect(report.exitCode == .hostFailed)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("app1/after")))
        #expect(Recap.render(report).contains("cancelled: interrupted"))
    }

    @Test func hostsNotStartedWhenCancelledAreNotStarted() async throws {
        let book = try playbook("- { name: slow, hosts: all, command: 'sleep 1' }\n")
        let events = EventLog()
        let runner = runner(["app1", "app2", "app3"], options: { $0.forks = 1 })
        let run = Task { await runner.run(book) { events.append($0) } }
        while !events.names.contains("started slow") { try await Task.sleep(for: .milliseconds(20)) }
        run.cancel()
        let report = await run.value
        // The first host had finished its only step; the others were never started.
        #expect(report.hosts.map(\.status) == [.ok, .cancelled, .cancelled])
        #expect(report.hosts.map(\.steps.count) == [1, 0, 0])
        #expect(events.names.filter { $0 == "connecting" }.count == 1)
    }

    @Test func forksLimitsHostsAtOnce() async throws {
        final class Counter: @unchecked Sendable {
            let lock = NSLock()
            var now = 0, most = 0
            func enter() { lock.withLock { now += 1; most = max(most, now) } }
            func leave() { lock.withLock { now -= 1 } }
        }
        struct CountingSession: HostSession {
            let inner = LocalShellSession()
            let counter: Counter
            func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult {
                try await inner.run(command, onLine: onLine)
            }
            func close() async { counter.leave() }
        }
        let counter = Counter()
        var options = RunOptions(playbookDirectory: scratch.path)
        options.forks = 2
        let runner = PlaybookRunner(targets: targets(["a1", "a2", "a3", "a4", "a5"]), options: options) { _ throws(SSHError) in
            counter.enter()
            return CountingSession(counter: counter)
        }
        let report = await runner.run(try playbook("- { name: s, hosts: all, command: 'sleep 0.1' }\n"))
        #expect(report.hosts.count == 5)
        #expect(report.hosts.allSatisfy { $0.status == .ok })
        #expect(counter.most == 2)
    }

    @Test func reportAsJSONAndRecap() async throws {
        let book = try playbook("- { name: one, hosts: all, command: 'echo hi' }\n")
        let report = await runner(["app1", "proxy"]).run(book)
        let decoded = try JSONDecoder.iso8601.decode(RunReport.self, from: try report.json())
        #expect(decoded.hosts.map(\.host) == ["app1", "proxy"])
        #expect(decoded.hosts[0].steps[0].output == "hi")
        let recap = Recap.render(report)
        #expect(recap.contains("app1    0        1       0        0  ok\n"))
        #expect(recap.hasPrefix("RECAP\nhost   ok  changed  failed  skipped  status\n"))
    }

    @Test func progressEventsArriveForEveryStep() async throws {
        let book = try playbook("- { name: one, hosts: all, command: 'echo hi' }\n- { name: two, hosts: all, command: { run: 'true', creates: / } }\n")
        let events = EventLog()
        _ = await runner(["app1"]).run(book) { events.append($0) }
        #expect(events.names == ["connecting", "connected", "started one", "output hi", "finished one changed", "finished two ok", "host app1"])
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [RunEvent] = []
    func append(_ event: RunEvent) { lock.withLock { events.append(event) } }
    var names: [String] {
        lock.withLock {
            events.map {
                switch $0 {
                case .connecting: return "connecting"
                case .connected: return "connected"
                case .hostKeyRecorded(_, let key): return "recorded \(key)"
                case .unreachable: return "unreachable"
                case .stepStarted(_, let step, _): return "started \(step)"
                case .stepFinished(_, let result): return "finished \(result.name) \(result.status.rawValue)"
                case .output(_, _, let line): return "output \(line.text)"
                case .hostFinished(let report): return "host \(report.host)"
                }
            }
        }
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
