import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// Playbooks bigger than one command line: many later steps to look at again after a change,
/// and a step whose own commands are longer than libssh2 can send as a command line (one SSH
/// packet: such commands failed with "Unable to send channel request", -34).
@Suite struct BigPlaybookTests {
    let scratch = Scratch()

    func run(_ yaml: String, server: TestSSHServer) async throws -> RunReport {
        let book = try PlaybookParser.parse(yaml: yaml, file: scratch.file("big.yml"))
        let facts = HostFacts(name: "h", address: "127.0.0.1", roles: ["app"], vars: ["root": .string(scratch.path)])
        let target = RunTarget(
            facts: facts, ssh: server.options(), become: nil, context: .forHost(facts, allHosts: [facts], globals: [:]),
            stateDirectory: scratch.file("state"))
        let runner = PlaybookRunner(targets: [target], options: RunOptions(playbookDirectory: scratch.path, backupDirectory: scratch.file("backups")))
        #expect(runner.validate(book).isEmpty)
        return await runner.run(book)
    }

    @Test func hundredsOfChangedStepsWithLongProbesAndALongCommand() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        // 300 steps whose guards name long paths: the steps after any change probe to far more
        // than a command line holds.
        let long = String(repeating: "d", count: 200)
        var yaml = "steps:\n"
        for index in 0..<300 {
            yaml += """
                  - name: step \(index)
                    hosts: app
                    command: { run: "touch {{vars.root}}/\(long)-\(index)", creates: "{{vars.root}}/\(long)-\(index)" }

                """
        }
        // One step's own command is 40 KB.
        yaml += """
              - name: a long command
                hosts: app
                command: { run: ": \(String(repeating: "x", count: 40_000)); touch {{vars.root}}/long-done", creates: "{{vars.root}}/long-done" }

            """
        let first = try await run(yaml, server: server)
        #expect(first.exitCode == .ok, "\(first.hosts.map { $0.error ?? "" })")
        #expect(first.hosts[0].count(.changed) == 301)
        #expect(FileManager.default.fileExists(atPath: scratch.file("long-done")))
        // Linear: a changed step costs one round trip, plus one look per window of steps.
        #expect(first.hosts[0].roundTrips <= 1 + 301 + 301 / HostRun.reprobeWindow + 1)
        let second = try await run(yaml, server: server)
        #expect(second.changedCount == 0)
        #expect(second.hosts[0].roundTrips == 1)
    }
}
