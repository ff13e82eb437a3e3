import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// Runs cut short over real SSH (loopback sshd, a scratch folder per "host"): a change whose
/// handler never ran because a later step failed, the run was cancelled, or the connection died
/// must get its handler on the next run, once, with the reason, and the report of the cut run
/// must show the change.
@Suite struct InterruptedRunTests {
    let scratch = Scratch()

    func runner(
        _ server: TestSSHServer, user: String = "root", become: Become? = nil, options: (inout RunOptions) -> Void = { _ in }
    ) -> PlaybookRunner {
        let facts = HostFacts(name: "app1", address: "127.0.0.1", roles: ["app"], vars: ["root": .string(scratch.file("app1"))])
        try? FileManager.default.createDirectory(atPath: scratch.file("app1"), withIntermediateDirectories: true)
        let target = RunTarget(facts: facts, ssh: server.options(user: user), become: become, context: .forHost(facts, allHosts: [facts], globals: [:]))
        var runOptions = RunOptions(playbookDirectory: scratch.path, backupDirectory: scratch.file("backups"), stateDirectory: scratch.file("state"))
        options(&runOptions)
        return PlaybookRunner(targets: [target], options: runOptions)
    }

    func playbook(_ yaml: String) throws -> Playbook {
        try PlaybookParser.parse(yaml: yaml, file: scratch.file("site.yml"))
    }

    /// The config changes and notifies; `gate` fails until the file `open` exists.
    static let gated = """
        steps:
          - name: config
            hosts: app
            file: { path: "{{vars.root}}/site.conf", content: "new\\n" }
            notify: reload nginx
          - name: gate
            hosts: app
            command: { run: "test -e {{vars.root}}/open && touch {{vars.root}}/passed", creates: "{{vars.root}}/passed" }
        handlers:
          - name: reload nginx
            command: "echo reload >> {{vars.root}}/reloads"
        """

    var records: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: scratch.file("state/pending/site.yml"))) ?? []
    }

    /// The run after a cut one runs the owed handler once and says why; the one after that is
    /// a clean no-op in one round trip.
    func expectRecovery(_ runner: PlaybookRunner, _ book: Playbook) async {
        let second = await runner.run(book)
        #expect(second.exitCode == .ok, "\(second.hosts.map { $0.error ?? "" })")
        let handler = second.hosts[0].steps.first { $0.handler }
        #expect(handler?.name == "reload nginx")
        #expect(handler?.status == .changed)
        #expect(handler?.summary.first == "pending from an earlier run that stopped before its handlers ran")
        #expect(scratch.read("app1/reloads") == "reload\n")
        #expect(second.hosts[0].pendingHandlers.isEmpty)
        #expect(records.isEmpty, "the record is removed once the handler ran")

        let third = await runner.run(book)
        #expect(third.changedCount == 0)
        #expect(third.hosts[0].roundTrips == 1, "reading the records rides in the one probe")
        #expect(scratch.read("app1/reloads") == "reload\n")
    }

    @Test func aLaterFailingStepLeavesTheHandlerPendingForTheNextRun() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let book = try playbook(Self.gated)
        let runner = runner(server)
        let first = await runner.run(book)
        #expect(first.exitCode == .hostFailed)
        #expect(first.hosts[0].steps.map(\.status) == [.changed, .failed])
        #expect(first.hosts[0].pendingHandlers == ["reload nginx"])
        #expect(Recap.render(first).contains("app1: handlers pending until the next run: reload nginx"))
        #expect(scratch.read("app1/site.conf") == "new\n")
        #expect(scratch.read("app1/reloads") == nil)
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.hasPrefix("reload_nginx-"))
        #expect(scratch.read("state/pending/site.yml/" + record) == "handler: reload nginx\nnotified by: config\n")

        scratch.write("app1/open", "")
        await expectRecovery(runner, book)
    }

    @Test func aFailedChangeOwesNoHandler() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        scratch.write("app1/site.conf", "old and good\n")
        let yaml = """
            steps:
              - name: config
                hosts: app
                file: { path: "{{vars.root}}/site.conf", content: "broken\\n", validate: "grep -q good %s" }
                notify: reload nginx
            handlers:
              - name: reload nginx
                command: "echo reload >> {{vars.root}}/reloads"
            """
        let report = await runner(server).run(try playbook(yaml))
        #expect(report.hosts[0].steps.map(\.status) == [.failed])
        #expect(report.hosts[0].pendingHandlers.isEmpty)
        #expect(records.isEmpty, "the record written before the change goes with the change that was not made")
    }

    @Test func aCancelledRunFinishesTheCommandUnderWayReportsItAndOwesTheHandler() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let yaml = """
            steps:
              - name: config
                hosts: app
                file: { path: "{{vars.root}}/site.conf", content: "new\\n" }
                notify: reload nginx
              - name: slow
                hosts: app
                command: { run: "sleep 1; touch {{vars.root}}/slow", creates: "{{vars.root}}/slow" }
              - name: after
                hosts: app
                command: { run: "touch {{vars.root}}/after", creates: "{{vars.root}}/after" }
            handlers:
              - name: reload nginx
                command: "echo reload >> {{vars.root}}/reloads"
            """
        let book = try playbook(yaml)
        // The next run starts right away: on a loaded machine the cancelled run's lock may take
        // a few seconds to go with its session, so the next runs wait for it.
        let runner = runner(server) { $0.lockWait = 120 }
        let events = EventLog()
        let run = Task { await runner.run(book) { events.append($0) } }
        while !events.names.contains("started slow") { try await Task.sleep(for: .milliseconds(20)) }
        run.cancel()
        let first = await run.value
        #expect(first.interrupted)
        #expect(first.hosts[0].status == .cancelled)
        // The command under way ran to its end and is in the report; nothing after it ran.
        #expect(first.hosts[0].steps.map(\.name) == ["config", "slow"])
        #expect(first.hosts[0].steps.map(\.status) == [.changed, .changed])
        #expect(FileManager.default.fileExists(atPath: scratch.file("app1/slow")))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("app1/after")))
        #expect(first.hosts[0].pendingHandlers == ["reload nginx"])
        let json = try JSONSerialization.jsonObject(with: try first.json()) as? [String: Any]
        #expect(json?["interrupted"] as? Bool == true)
        let hosts = json?["hosts"] as? [[String: Any]]
        let steps = hosts?.first?["steps"] as? [[String: Any]]
        #expect(steps?.compactMap { $0["status"] as? String } == ["changed", "changed"])
        #expect(hosts?.first?["pendingHandlers"] as? [String] == ["reload nginx"])
        #expect(Recap.render(first).hasPrefix("RECAP (interrupted before every host finished)\n"))

        let second = await runner.run(book)
        #expect(second.hosts[0].steps.map(\.name) == ["config", "slow", "after", "reload nginx"])
        #expect(second.hosts[0].steps.last?.summary.first == "pending from an earlier run that stopped before its handlers ran")
        #expect(scratch.read("app1/reloads") == "reload\n")
        let third = await runner.run(book)
        #expect(third.changedCount == 0)
        #expect(third.hosts[0].roundTrips == 1)
    }

    /// The step's own command kills the SSH connection under it (the session's sshd process,
    /// its nearest sshd ancestor) after making its change: the runner cannot know how the
    /// command ended.
    @Test func aConnectionLostDuringAChangeIsReportedAsMayHaveChanged() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let yaml = """
            steps:
              - name: deploy and lose the connection
                hosts: app
                command:
                  run: |
                    touch {{vars.root}}/deployed
                    p=$PPID
                    until grep -q '^sshd' /proc/$p/comm; do p=$(ps -o ppid= -p $p | tr -d ' '); done
                    kill -9 $p; sleep 5
                  creates: "{{vars.root}}/deployed"
                notify: restart app
            handlers:
              - name: restart app
                command: "echo restart >> {{vars.root}}/restarts"
            """
        let book = try playbook(yaml)
        let runner = runner(server)
        let first = await runner.run(book)
        // The connection went away under the command: the host is unreachable, not failed.
        #expect(first.exitCode == .unreachable)
        #expect(first.hosts[0].status == .unreachable)
        #expect(first.hosts[0].error?.contains("the connection was lost while running a command") == true, "\(first.hosts[0].error ?? "")")
        let step = try #require(first.hosts[0].steps.first)
        #expect(step.status == .changed)
        #expect(step.uncertain)
        #expect(step.message?.hasPrefix("may have changed: ") == true, "\(step.message ?? "")")
        #expect(first.hosts[0].pendingHandlers == ["restart app"])
        #expect(Recap.render(first).contains("app1: deploy and lose the connection may have changed"))
        #expect(FileManager.default.fileExists(atPath: scratch.file("app1/deployed")))

        let second = await runner.run(book)
        #expect(second.exitCode == .ok, "\(second.hosts.map { $0.error ?? "" })")
        #expect(second.hosts[0].steps.map(\.status) == [.ok, .changed])
        #expect(scratch.read("app1/restarts") == "restart\n")
    }

    @Test func aFailingHandlerStaysPending() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let yaml = """
            steps:
              - name: config
                hosts: app
                file: { path: "{{vars.root}}/site.conf", content: "new\\n" }
                notify: reload nginx
            handlers:
              - name: reload nginx
                command: "test -e {{vars.root}}/nginx-ok && echo reload >> {{vars.root}}/reloads"
            """
        let book = try playbook(yaml)
        let runner = runner(server)
        let first = await runner.run(book)
        #expect(first.hosts[0].steps.map(\.status) == [.changed, .failed])
        #expect(first.hosts[0].pendingHandlers == ["reload nginx"])
        let second = await runner.run(book)
        #expect(second.hosts[0].steps.map(\.status) == [.ok, .failed], "tried again, failed again, still owed")
        #expect(records.count == 1)
        scratch.write("app1/nginx-ok", "")
        await expectRecovery(runner, book)
    }

    @Test func checkModeSaysThePendingHandlerWouldRunAndKeepsIt() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let book = try playbook(Self.gated)
        let runner = runner(server)
        _ = await runner.run(book)
        let check = await self.runner(server, options: { $0.check = true }).run(book)
        #expect(check.hosts[0].steps.last?.name == "reload nginx")
        #expect(check.hosts[0].steps.last?.status == .changed)
        #expect(records.count == 1)
        #expect(scratch.read("app1/reloads") == nil)
    }

    /// A login that is not root, with sudo, and steps without `become`: the records still live
    /// in the state directory only root may write, put there and removed by a command as root
    /// of their own (the only case that costs round trips).
    @Test func aLoginUserWithoutBecomeStillRecordsAsRoot() async throws {
        let user = "lbi" + String(UUID().uuidString.prefix(6)).lowercased()
        let sudoers = "/etc/sudoers.d/labctl-interrupt-\(user)"
        defer {
            try? FileManager.default.removeItem(atPath: sudoers)
            _ = try? runLocal(["userdel", "-r", user], check: false)
        }
        try runLocal(["useradd", "-m", "-s", "/bin/bash", user])
        try runLocal(["chpasswd"], stdin: "\(user):pw-\(user)\n")
        try "\(user) ALL=(ALL) NOPASSWD:ALL\n".write(toFile: sudoers, atomically: true, encoding: .utf8)
        try runLocal(["chmod", "0440", sudoers])
        let server = try TestSSHServer()
        defer { server.stop() }
        _ = await shell("chmod 0755 " + Shell.quote(scratch.path))
        try FileManager.default.createDirectory(atPath: scratch.file("app1"), withIntermediateDirectories: true)
        try runLocal(["chown", user, scratch.file("app1")])
        try FileManager.default.createDirectory(atPath: scratch.file("state"), withIntermediateDirectories: true)
        _ = await shell("chmod 0755 " + Shell.quote(scratch.file("state")))
        let book = try playbook(Self.gated)
        let runner = runner(server, user: user, become: .sudo)
        let first = await runner.run(book)
        #expect(first.hosts[0].steps.map(\.status) == [.changed, .failed], "\(first.hosts[0].error ?? "")")
        #expect(first.hosts[0].pendingHandlers == ["reload nginx"])
        let record = try #require(records.first)
        #expect(await shell("stat -c %U " + Shell.quote(scratch.file("state/pending/site.yml/" + record))).stdout == "root\n")
        try runLocal(["install", "-o", user, "/dev/null", scratch.file("app1/open")])
        await expectRecovery(runner, book)
    }
}

/// Two runs at once on one host: the second is refused at once with who holds the host, or
/// waits for it with a lock wait.
@Suite struct ConcurrentRunTests {
    let scratch = Scratch()

    func runner(_ server: TestSSHServer, lockWait: Int? = nil) -> PlaybookRunner {
        let facts = HostFacts(name: "app1", address: "127.0.0.1", roles: ["app"], vars: ["root": .string(scratch.file("app1"))])
        try? FileManager.default.createDirectory(atPath: scratch.file("app1"), withIntermediateDirectories: true)
        let target = RunTarget(facts: facts, ssh: server.options(), become: nil, context: .forHost(facts, allHosts: [facts], globals: [:]))
        let options = RunOptions(
            playbookDirectory: scratch.path, backupDirectory: scratch.file("backups"), stateDirectory: scratch.file("state"), lockWait: lockWait)
        return PlaybookRunner(targets: [target], options: options)
    }

    @Test func aSecondRunIsRefusedNamingTheFirstOrWaitsForIt() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        // The first run's step holds until the file `go` exists.
        let holding = try PlaybookParser.parse(yaml: """
            - name: hold
              hosts: app
              command: "until [ -e {{vars.root}}/go ]; do sleep 0.1; done; echo first >> {{vars.root}}/order"
            """, file: scratch.file("deploy.yml"))
        let other = try PlaybookParser.parse(yaml: """
            - name: second
              hosts: app
              command: "echo second >> {{vars.root}}/order"
            """, file: scratch.file("site.yml"))
        let events = EventLog()
        let firstRunner = runner(server)
        let first = Task { await firstRunner.run(holding) { events.append($0) } }
        while !events.names.contains("started hold") { try await Task.sleep(for: .milliseconds(20)) }

        let refused = await runner(server).run(other)
        #expect(refused.hosts[0].status == .failed)
        let error = try #require(refused.hosts[0].error)
        #expect(error.hasPrefix("another run holds this host's lock \(scratch.file("state/lock")), labctl (pid \(getpid()) on "), "\(error)")
        #expect(error.contains(" running deploy.yml since 20"))
        #expect(error.hasSuffix("; nothing was changed; run again when it ends, or with --wait"))
        #expect(refused.hosts[0].steps.isEmpty)
        #expect(scratch.read("app1/order") == nil)

        let waitingRunner = runner(server, lockWait: 60)
        let waiting = Task { await waitingRunner.run(other) }
        // Let the first run go only once the second is seen waiting on the host for the lock.
        var seen = false
        for _ in 0..<500 where !seen {
            seen = await shell("pgrep -f 'flock -w 60 9' >/dev/null").status == 0
            if !seen { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(seen, "the second run waits on the host")
        scratch.write("app1/go", "")
        #expect(await first.value.exitCode == .ok)
        let waited = await waiting.value
        #expect(waited.exitCode == .ok, "\(waited.hosts.map { $0.error ?? "" })")
        #expect(scratch.read("app1/order") == "first\nsecond\n", "the waiting run ran once the first was done")

        // Back to back, as `labctl up` runs provision then deploy: the lock of a run that ended is free.
        #expect(await runner(server).run(other).exitCode == .ok)
    }
}
