import Foundation
import TextLayout
import LabSpec

extension VerifyReport {
    // MARK: - Table

    /// A plain-text report for a terminal `width` columns wide. A check whose name and summary
    /// fit on one line is one line (names aligned); a longer one has its summary under the name,
    /// wrapped between words, as is the evidence under a failure. `style` may decorate the status
    /// word (the CLI colours it); it gets the status and the padded word, and returns what to print.
    public func table(width: Int = 80, style: (CheckStatus, String) -> String = { $1 }) -> String {
        let width = max(40, width)
        var out: [String] = []
        var heading = "labctl verify: \(lab)"
        if let domain { heading += " (http://\(domain)/" + (proxy.map { " via \($0)" } ?? "") + ")" }
        out.append(contentsOf: TextWrap.lines(heading, width: width))
        out.append("")
        let nameWidth = min(40, checks.map(\.name.count).max() ?? 0)
        let summaryIndent = 8
        let detailIndent = 10
        for check in checks {
            let word = style(check.status, Self.word(check.status).padding(toLength: 4, withPad: " ", startingAt: 0))
            if 2 + 4 + 2 + nameWidth + 2 + check.summary.count <= width, check.name.count <= nameWidth {
                out.append("  \(word)  \(check.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(check.summary)")
            } else {
                let name = TextWrap.lines(check.name, width: width - summaryIndent)
                out.append("  \(word)  \(name[0])")
                out.append(contentsOf: name.dropFirst().map { String(repeating: " ", count: summaryIndent) + $0 })
                out.append(contentsOf: TextWrap.lines(check.summary, width: width, indent: summaryIndent))
            }
            if let shares = check.distribution, !shares.isEmpty {
                let rows = shares.map { share in
                    var notes: [String] = []
                    if let expected = share.expectedShare { notes.append(String(format: "(expected %.0f %%)", expected * 100)) }
                    if share.backup { notes.append("backup") }
                    if share.stopped { notes.append("stopped") }
                    return [share.server, String(format: "%4d", share.count), String(format: "%5.1f %%", share.share * 100), notes.joined(separator: "  ")]
                }
                let lines = TextTable(rows, alignments: [.left, .right, .right]).lines(indent: detailIndent)
                for (line, share) in zip(lines, shares) {
                    let room = max(0, min(30, width - line.count - 2))
                    out.append(room > 0 ? line + "  " + String(repeating: "#", count: Int((share.share * Double(room)).rounded())) : line)
                }
            }
            if let latency = check.latency, check.kind == .load || check.kind == .balancing {
                out.append(contentsOf: TextWrap.lines(Self.describe(latency), width: width, indent: detailIndent))
            }
            if check.status == .fail {
                for line in Self.evidenceLines(check.evidence) {
                    out.append(contentsOf: TextWrap.lines(line, width: width, indent: detailIndent, hanging: 2))
                }
            }
        }
        out.append("")
        var last = tally + String(format: " (%.1f s)", seconds)
        if interrupted { last += "; INTERRUPTED before the end" }
        out.append(contentsOf: TextWrap.lines(last, width: width))
        return out.joined(separator: "\n") + "\n"
    }

    /// "5 checks: 2 passed, 1 failed, ...": the table's last line and the HTML report's heading.
    var tally: String {
        var tally = "\(checks.count) checks: \(count(.pass)) passed, \(count(.fail)) failed"
        if count(.info) > 0 { tally += ", \(count(.info)) for information" }
        if count(.skipped) > 0 { tally += ", \(count(.skipped)) skipped" }
        return tally
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
    /// the whole file for one of them. The HTML report uses it too: every entity here means the
    /// same in HTML5, and the controls would show as nothing or as boxes there anyway.
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
