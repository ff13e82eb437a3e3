import Foundation
import LabSpec

extension VerifyReport {
    // MARK: - Table

    /// A plain-text report for a terminal. `style` may decorate the status word (the CLI colours
    /// it); it gets the status and the padded word, and returns what to print.
    public func table(style: (CheckStatus, String) -> String = { $1 }) -> String {
        var out: [String] = []
        var heading = "labctl verify: \(lab)"
        if let domain { heading += " (http://\(domain)/" + (proxy.map { " via \($0)" } ?? "") + ")" }
        out.append(heading)
        out.append("")
        let nameWidth = min(64, checks.map(\.name.count).max() ?? 0)
        for check in checks {
            let word = style(check.status, Self.word(check.status).padding(toLength: 4, withPad: " ", startingAt: 0))
            let name = check.name.count > nameWidth ? String(check.name.prefix(nameWidth - 1)) + "…" : check.name
            out.append("  \(word)  \(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(check.summary)")
            if let shares = check.distribution, !shares.isEmpty {
                let width = shares.map(\.server.count).max() ?? 0
                for share in shares {
                    var line = "          \(share.server.padding(toLength: width, withPad: " ", startingAt: 0))  "
                        + String(format: "%4d  %5.1f %%", share.count, share.share * 100)
                    if let expected = share.expectedShare { line += String(format: "  (expected %.0f %%)", expected * 100) }
                    if share.backup { line += "  backup" }
                    if share.stopped { line += "  stopped" }
                    line += "  " + String(repeating: "#", count: Int((share.share * 30).rounded()))
                    out.append(line)
                }
            }
            if let latency = check.latency, check.kind == .load || check.kind == .balancing {
                out.append("          " + Self.describe(latency))
            }
            if check.status == .fail {
                out.append(contentsOf: Self.evidenceLines(check.evidence).map { "          " + $0 })
            }
        }
        out.append("")
        var tally = "\(checks.count) checks: \(count(.pass)) passed, \(count(.fail)) failed"
        if count(.info) > 0 { tally += ", \(count(.info)) for information" }
        if count(.skipped) > 0 { tally += ", \(count(.skipped)) skipped" }
        tally += String(format: " (%.1f s)", seconds)
        if interrupted { tally += "; INTERRUPTED before the end" }
        out.append(tally)
        return out.joined(separator: "\n") + "\n"
    }

    static func word(_ status: CheckStatus) -> String {
        switch status {
        case .pass: return "PASS"
        case .fail: return "FAIL"
        case .info: return "INFO"
        case .skipped: return "SKIP"
        }
    }

    static func describe(_ latency: LatencySummary) -> String {
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f ms", $0) } ?? "-" }
        var text = "\(latency.requests) requests, \(latency.errors) errors; latency p50 \(ms(latency.p50)), p95 \(ms(latency.p95)), p99 \(ms(latency.p99)), max \(ms(latency.max))"
        if let rate = latency.rate { text += String(format: "; %.1f requests/s", rate) }
        return text
    }

    static func evidenceLines(_ evidence: Evidence) -> [String] {
        var lines: [String] = []
        if let target = evidence.target { lines.append(target) }
        var seen: [String] = []
        if let status = evidence.httpStatus { seen.append("status \(status)") }
        if let server = evidence.server { seen.append("server \(server)") }
        if !seen.isEmpty { lines.append(seen.joined(separator: ", ")) }
        if let body = evidence.bodyExcerpt { lines.append("body: \(body)") }
        lines.append(contentsOf: evidence.details)
        return lines
    }

    // MARK: - JSON

    /// The report as JSON (keys sorted, dates in ISO 8601), for CI and scripts.
    public func json() throws -> Data {
        try ReportJSON.encode(self)
    }

    public static func decode(json data: Data) throws -> VerifyReport {
        try ReportJSON.decoder().decode(VerifyReport.self, from: data)
    }

    // MARK: - JUnit XML

    /// JUnit XML as Jenkins, GitLab and GitHub's test reporters read it: one testsuite, one
    /// testcase per check; a failed check has a <failure> with its evidence, a skipped one
    /// <skipped/>, one that is only reported has its finding in <system-out>.
    public func junitXML() -> String {
        let timestamp = ISO8601DateFormatter().string(from: startedAt)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"labctl verify\" tests=\"\(checks.count)\" failures=\"\(count(.fail))\" errors=\"0\" skipped=\"\(count(.skipped))\" time=\"\(Self.seconds(seconds))\">\n"
        xml += "  <testsuite name=\"\(XML.escape("labctl verify \(lab)"))\" tests=\"\(checks.count)\" failures=\"\(count(.fail))\" errors=\"0\" skipped=\"\(count(.skipped))\" time=\"\(Self.seconds(seconds))\" timestamp=\"\(timestamp)\""
        xml += proxy.map { " hostname=\"\(XML.escape($0))\"" } ?? ""
        xml += ">\n"
        if interrupted {
            xml += "    <system-err>\(XML.escape("interrupted before every check ran"))</system-err>\n"
        }
        for check in checks {
            xml += "    <testcase classname=\"labctl.verify.\(check.kind.rawValue)\" name=\"\(XML.escape(check.name))\" time=\"\(Self.seconds(check.seconds))\""
            switch check.status {
            case .pass:
                xml += ">\n      <system-out>\(XML.escape(check.summary))</system-out>\n    </testcase>\n"
            case .info:
                xml += ">\n      <system-out>\(XML.escape("INFO: " + check.summary))</system-out>\n    </testcase>\n"
            case .skipped:
                xml += ">\n      <skipped message=\"\(XML.escape(check.summary))\"/>\n    </testcase>\n"
            case .fail:
                let body = ([check.summary] + Self.evidenceLines(check.evidence)).joined(separator: "\n")
                xml += ">\n      <failure message=\"\(XML.escape(check.summary))\" type=\"\(check.kind.rawValue)\">\(XML.escape(body))</failure>\n    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }
}

enum XML {
    /// Escaped for both text and attribute values. Characters XML 1.0 cannot hold at all (most
    /// C0 controls, which a body excerpt may carry) become U+FFFD: a CI parser would reject
    /// the whole file for one of them.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default:
                let v = scalar.value
                let allowed = (0x20...0xD7FF).contains(v) || (0xE000...0xFFFD).contains(v) || (0x10000...0x10FFFF).contains(v)
                out.unicodeScalars.append(allowed ? scalar : "\u{FFFD}")
            }
        }
        return out
    }
}
