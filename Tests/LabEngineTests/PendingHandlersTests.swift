import Foundation
import Testing
@testable import LabEngine

/// The pending-handler records as data: where they go and the shell that writes, reads and
/// removes them.
@Suite struct PendingHandlersTests {
    let records = PendingHandlers(
        stateDirectory: "/var/lib/labctl", playbookFile: "/home/me/lab/playbooks/deploy.yml",
        handlers: ["reload nginx", "reload_nginx", "it's $(reboot)/..", ".hidden"])

    @Test func pathsAreStableSafeAndDistinct() throws {
        #expect(records.directory == "/var/lib/labctl/pending/deploy.yml")
        let reload = try #require(records.paths["reload nginx"])
        #expect(reload.hasPrefix("/var/lib/labctl/pending/deploy.yml/reload_nginx-"))
        #expect(reload != records.paths["reload_nginx"], "names that reduce alike stay apart")
        // The same playbook file name elsewhere (another checkout, another machine) finds the same record.
        let elsewhere = PendingHandlers(stateDirectory: "/var/lib/labctl", playbookFile: "deploy.yml", handlers: ["reload nginx"])
        #expect(elsewhere.paths["reload nginx"] == reload)
        for path in records.paths.values {
            let name = (path as NSString).lastPathComponent
            #expect(name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }, "\(name)")
            #expect(!name.hasPrefix("."))
            #expect((path as NSString).deletingLastPathComponent == records.directory)
        }
    }

    @Test func recordsAreWrittenQuotedAndRemovedTogether() throws {
        let hostile = try #require(records.paths["it's $(reboot)/.."])
        #expect(records.record(["it's $(reboot)/.."], step: "app's config") == [
            "mkdir -p -- /var/lib/labctl/pending/deploy.yml",
            "printf '%s' 'handler: it'\\''s $(reboot)/..\nnotified by: app'\\''s config\n' > \(hostile)",
        ])
        #expect(records.record([], step: "x").isEmpty)
        #expect(records.clear(["reload nginx", "unknown"]) == "rm -f -- \(records.paths["reload nginx"]!)")
        #expect(records.clear([]) == nil)
    }

    @Test func theProbeReportsWhichRecordsExist() async throws {
        let folder = Scratch()
        let book = PendingHandlers(stateDirectory: folder.path, playbookFile: "site.yml", handlers: ["a", "b", "c"])
        _ = await shell(book.record(["a", "c"], step: "s").joined(separator: "\n"))
        let reader = PendingProbe(pending: book, handlers: ["a", "b", "c"])
        let facts = await probe(reader)
        #expect(reader.found(facts) == ["a", "c"])
        _ = await shell(book.clear(["a"])!)
        #expect(reader.found(await probe(reader)) == ["c"])
    }
}

/// The apply command around a plan, run in a real shell: what becomes of the records when the
/// plan succeeds, fails, or is killed half-way.
@Suite struct ApplyScriptTests {
    let scratch = Scratch()

    func run(_ commands: [String]) async -> (records: [String], stdout: String, status: Int32) {
        let pending = PendingHandlers(stateDirectory: scratch.path, playbookFile: "site.yml", handlers: ["reload"])
        let records = HostRun.Records(before: pending.record(["reload"], step: "config"), onFailure: pending.clear(["reload"]))
        let script = HostRun.applyScript(StepPlan(commands: commands), records: records, nonce: "n0")
        let result = await shell(script)
        let found = (try? FileManager.default.contentsOfDirectory(atPath: pending.directory)) ?? []
        return (found, result.stdout, result.status)
    }

    @Test func theRecordIsWrittenBeforeThePlanAndKeptWhenItSucceeds() async throws {
        let pending = PendingHandlers(stateDirectory: scratch.path, playbookFile: "site.yml", handlers: ["reload"])
        let record = Shell.quote(pending.paths["reload"]!)
        let result = await run(["test -e \(record)", "echo changed"])
        #expect(result.status == 0)
        #expect(result.records.count == 1)
        #expect(result.stdout == "@@n0 started\nchanged\n\n@@n0 applied 0\n")
    }

    @Test func aFailedPlanTakesItsRecordAway() async {
        let result = await run(["false"])
        #expect(result.status == 1)
        #expect(result.records.isEmpty)
        #expect(result.stdout.hasSuffix("@@n0 applied 1\n"))
    }

    @Test func aPlanKilledHalfWayKeepsTheRecord() async {
        // The plan's shell dies of a signal (its session gone, the OOM killer): nothing says
        // the change was not made, so its handler stays owed.
        let result = await run(["echo half", "sh -c 'kill -9 $PPID'", "echo never"])
        #expect(result.records.count == 1)
        #expect(!result.stdout.contains("never"))
        #expect(result.status == 137)
    }

    @Test func aRecordThatCannotBeWrittenStopsTheCommandBeforeAnyChange() async {
        let records = HostRun.Records(before: ["mkdir -p -- /proc/labctl-cannot"], onFailure: nil)
        let marker = scratch.file("changed")
        let result = await shell(HostRun.applyScript(StepPlan(commands: ["touch \(Shell.quote(marker))"]), records: records, nonce: "n1"))
        #expect(result.status != 0)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}
