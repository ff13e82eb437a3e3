import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import LabVerify
import Testing

/// Collects what a JUnit file says, to check it parses and holds what was reported.
final class JUnitReader: NSObject, XMLParserDelegate {
    var suites: [[String: String]] = []
    var cases: [(attributes: [String: String], children: [String], text: String)] = []
    var failureMessages: [String] = []
    private var inCase = false
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        switch name {
        case "testsuite": suites.append(attributes)
        case "testcase":
            cases.append((attributes, [], ""))
            inCase = true
            text = ""
        default:
            if inCase { cases[cases.count - 1].children.append(name) }
            if name == "failure" { failureMessages.append(attributes["message"] ?? "") }
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "testcase" {
            cases[cases.count - 1].text = text.trimmingCharacters(in: .whitespacesAndNewlines)
            inCase = false
        }
    }

    static func read(_ xml: String) throws -> JUnitReader {
        let reader = JUnitReader()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = reader
        guard parser.parse() else {
            throw parser.parserError ?? CocoaError(.coderReadCorrupt)
        }
        return reader
    }
}

struct RenderTests {
    static let nasty = "a<b>&\"c\"'d'\u{1}\u{7}\u{1B}[31m\u{0}é — 🎉"

    var report: VerifyReport {
        VerifyReport(
            lab: "wayshub-lab", domain: "wayshub.lab", proxy: "198.18.42.10:80",
            startedAt: Date(timeIntervalSince1970: 1_800_000_000), seconds: 1.25,
            checks: [
                CheckResult(kind: .appDirect, name: "app1 answers on :3000", host: "app1", status: .pass,
                            summary: "200 with the app's page", evidence: Evidence(httpStatus: 200), seconds: 0.003),
                CheckResult(kind: .resolution, name: "wayshub.lab resolves to the proxy", status: .info,
                            summary: "wayshub.lab does not resolve"),
                CheckResult(kind: .failover, name: "failover drill", status: .skipped, summary: "needs two app servers"),
                CheckResult(kind: .domain, name: "http://wayshub.lab/ answers <through> the proxy", host: "proxy", status: .fail,
                            summary: "answered 502: nginx reached no app server",
                            evidence: Evidence(target: "GET http://198.18.42.10:80/ (Host: wayshub.lab)", httpStatus: 502,
                                               server: "unknown", bodyExcerpt: Self.nasty, details: ["X-Upstream: 198.18.42.11:3000"]),
                            seconds: 0.01),
                CheckResult(kind: .balancing, name: "load balancing", status: .pass, summary: "even",
                            distribution: [ServerShare(server: "app1", count: 26, share: 0.52, expectedShare: 0.5),
                                           ServerShare(server: "app2", count: 24, share: 0.48, expectedShare: 0.5)],
                            latency: LatencySummary(latencies: [1, 2, 3], errors: 0)),
            ])
    }

    @Test("XML escaping: markup characters become entities, characters XML cannot hold become U+FFFD")
    func escaping() {
        #expect(XML.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;")
        #expect(XML.escape("x\u{0}y\u{1B}z") == "x\u{FFFD}y\u{FFFD}z")
        #expect(XML.escape("tab\tline\n") == "tab&#9;line&#10;")
        #expect(XML.escape("é 🎉") == "é 🎉")
    }

    @Test("JUnit: parses back with one testcase per check, failure with message and evidence, skipped, counts")
    func junitParses() throws {
        let xml = report.junitXML()
        let reader = try JUnitReader.read(xml)
        #expect(reader.suites.count == 1)
        let suite = try #require(reader.suites.first)
        #expect(suite["tests"] == "5")
        #expect(suite["failures"] == "1")
        #expect(suite["skipped"] == "1")
        #expect(suite["name"] == "labctl verify wayshub-lab")
        #expect(reader.cases.count == 5)
        #expect(reader.cases.map { $0.attributes["classname"] ?? "" } == [
            "labctl.verify.app-direct", "labctl.verify.resolution", "labctl.verify.failover",
            "labctl.verify.domain", "labctl.verify.balancing",
        ])
        #expect(reader.cases[3].attributes["name"] == "http://wayshub.lab/ answers <through> the proxy")
        #expect(reader.cases[3].children == ["failure"])
        #expect(reader.cases[2].children == ["skipped"])
        #expect(reader.failureMessages == ["answered 502: nginx reached no app server"])
        let failureText = reader.cases[3].text
        #expect(failureText.contains("status 502"))
        #expect(failureText.contains("X-Upstream: 198.18.42.11:3000"))
        #expect(failureText.contains("a<b>&\"c\"'d'\u{FFFD}"))
        #expect(reader.cases[1].text.hasPrefix("INFO: "))
    }

    @Test("JSON: round-trips and names statuses and kinds in words")
    func jsonRoundTrip() throws {
        let data = try report.json()
        let back = try VerifyReport.decode(json: data)
        #expect(back == report)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"status\" : \"fail\""))
        #expect(text.contains("\"kind\" : \"app-direct\""))
        #expect(text.contains("\"startedAt\" : \"2027-01-15T08:00:00Z\""))
    }

    @Test("the table: one line per check, the distribution, the failure's evidence, the tally; style hook sees statuses")
    func table() {
        let styled = report.table { status, word in status == .fail ? "[\(word)]" : word }
        #expect(styled.hasPrefix("labctl verify: wayshub-lab (http://wayshub.lab/ via 198.18.42.10:80)\n"))
        #expect(styled.contains("[FAIL]  http://wayshub.lab/"))
        #expect(styled.contains("PASS  app1 answers on :3000"))
        #expect(styled.contains("status 502, server unknown"))
        #expect(styled.contains("app1    26   52.0 %  (expected 50 %)"))
        #expect(styled.contains("5 checks: 2 passed, 1 failed, 1 for information, 1 skipped (1.2 s)") || styled.contains("(1.3 s)"))
    }

    @Test("exit codes: 0 when nothing failed, 1 with a failure, 130 when only interrupted")
    func exitCodes() {
        var report = report
        #expect(report.exitCode == 1)
        #expect(!report.passed)
        report.checks.removeAll { $0.status == .fail }
        #expect(report.exitCode == 0)
        #expect(report.passed)
        report.interrupted = true
        #expect(report.exitCode == 130)
    }
}
