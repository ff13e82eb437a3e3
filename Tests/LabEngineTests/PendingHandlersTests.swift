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
