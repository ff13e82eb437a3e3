import Foundation
@testable import LabVerify
import Testing

/// Verify's checks are written once, in `VerifyCheck.all`; the docs and the help come from it.
struct CheckRegistryTests {
    static let docsFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/verify.md")

    @Test("docs/verify.md's table of checks is the registry's, row for row")
    func docsTableMatches() throws {
        let text = try String(contentsOf: Self.docsFile, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex(of: "| # | check | passes when | evidence on failure |"), "docs/verify.md has no table of checks")
        let table = lines[start...].prefix { $0.hasPrefix("|") }.joined(separator: "\n")
        #expect(table == VerifyCheck.docsTable, "replace the table in docs/verify.md with:\n\(VerifyCheck.docsTable)")
    }

    @Test("every kind has one entry, numbered 1, 2, 3... in run order; a check inside another names one that runs alone")
    func entries() {
        #expect(VerifyCheck.all.map(\.kind).sorted { $0.rawValue < $1.rawValue } == CheckKind.allCases.sorted { $0.rawValue < $1.rawValue })
        #expect(VerifyCheck.all.map(\.number) == Array(1...VerifyCheck.all.count))
        for check in VerifyCheck.all {
            #expect(!check.docs.isEmpty, "\(check.kind) has no docs row")
            #expect(!check.help.contains("\n"))
            if case .partOf(let host, _, _) = check.work, case .partOf = VerifyCheck.check(host).work {
                Issue.record("\(check.kind) runs inside \(host), which runs inside another check")
            }
        }
    }

    @Test("the default set and the HTTP-only set come from the registry")
    func sets() {
        #expect(CheckKind.standard == [.appDirect, .nginx, .resolution, .domain, .balancing])
        #expect(CheckKind.httpOnly == [.appDirect, .resolution, .domain, .balancing])
        #expect(VerifyOptions().checks == CheckKind.standard)
        #expect(VerifyOptions(failover: true, loadRate: 5).checks == Set(CheckKind.allCases))
    }

    @Test("the help's list: numbered, one entry per check, no line past 78 columns")
    func helpList() {
        let list = VerifyCheck.helpList
        for check in VerifyCheck.all {
            #expect(list.contains("  \(check.number). "))
        }
        #expect(list.components(separatedBy: "\n").allSatisfy { $0.count <= 78 })
        #expect(list.contains("with --failover: each app server in turn is taken down"))
    }
}
