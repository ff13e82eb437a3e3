import Foundation
@testable import LabVerify
import TestSupport
import Testing

/// A drill of three app servers over 30 s, each taken down, restored and back in turn, with a
/// few errors and a latency spike after each stop, as the drill records them.
func drillTimeline(servers: [String] = ["app1", "app2", "app3"], unknownAt: Double? = nil) -> DrillTimeline {
    var events: [DrillEvent] = []
    for (index, server) in servers.enumerated() {
        let down = 3 + Double(index) * 9
        events.append(DrillEvent(at: down, server: server, kind: .down, how: "systemctl stop wayshub"))
        events.append(DrillEvent(at: down + 4.5, server: server, kind: .restored, how: "systemctl start wayshub"))
        events.append(DrillEvent(at: down + 6.2, server: server, kind: .back, how: "answered through the proxy"))
    }
    let buckets = (0..<30).map { second -> TimelineBucket in
        let start = Double(second)
        let live = servers.filter { server in
            let down = events.first { $0.server == server && $0.kind == .down }!.at
            let back = events.first { $0.server == server && $0.kind == .back }!.at
            return start < down || start >= back
        }
        var answered = Dictionary(uniqueKeysWithValues: live.map { ($0, 20 / max(live.count, 1) + second % 3) })
        if start == unknownAt { answered["unknown"] = 2 }
        let afterStop = events.contains { $0.kind == .down && start == $0.at.rounded(.down) }
        return TimelineBucket(start: start, answered: answered, errors: afterStop ? 2 : 0,
                              p50: second == 29 ? nil : 2 + Double(second % 4) * 0.3, p99: second == 29 ? nil : afterStop ? 180 : 9)
    }
    return DrillTimeline(bucketSeconds: 1, servers: servers, buckets: buckets, events: events)
}

/// The values of one attribute in every tag of `html` that has it, in order.
func attributeValues(_ name: String, in html: String) -> [String] {
    let pattern = try! Regex("\\s\(name)=\"([^\"]*)\"")
    return html.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) }
}

/// The text of the report's JSON data block.
func reportData(in html: String) throws -> String {
    let opening = "<script type=\"application/json\" id=\"report-data\">"
    let start = try #require(html.range(of: opening))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    return String(html[start.upperBound..<end.lowerBound])
}

struct HTMLReportTests {
    static let hostile = "</script><img src=x onerror=alert(1)><!-- \u{2028}\u{2029} https://evil.example/x.css"

    /// RenderTests' report (every status, a failure with nasty evidence, a distribution), with the
    /// drill added.
    var report: VerifyReport {
        var report = RenderTests().report
        report.checks.append(CheckResult(
            kind: .failover, name: "failover: app2 stopped, the domain still answers", host: "app2", status: .pass,
            summary: "50 requests answered while app2 was stopped",
            evidence: Evidence(target: "systemctl stop wayshub on app2", details: ["app2 answered directly again after 1.2 s"]),
            distribution: [ServerShare(server: "app1", count: 30, share: 0.6, expectedShare: 0.5),
                           ServerShare(server: "app2", count: 0, share: 0, stopped: true),
                           ServerShare(server: "app3", count: 20, share: 0.4, backup: true)]))
        report.checks.append(CheckResult(
            kind: .load, name: "load at 20/s during the drill", status: .pass, summary: "no request failed",
            latency: LatencySummary(requests: 600, errors: 0, p50: 2.5, p95: 7, p99: 9.5, max: 180, rate: 19.9)))
        report.timeline = drillTimeline()
        return report
    }

    /// A report whose every string a reader controls says `hostile`.
    var hostileReport: VerifyReport {
        var report = report
        report.lab = Self.hostile
        report.checks[0].name = Self.hostile
        report.checks[0].summary = Self.hostile
        report.checks[0].evidence.details.append(Self.hostile)
        report.checks[4].distribution?[0].server = Self.hostile
        report.timeline?.events[0].how = Self.hostile
        return report
    }

    @Test("self-contained: no element, attribute or CSS that loads anything; a policy that forbids it")
    func selfContained() throws {
        let html = report.html()
        // Every "<" of the page is markup: the report's text is escaped and the JSON has \u003c.
        let data = try reportData(in: html)
        #expect(!data.contains("<"))
        let tags = html.matches(of: /<([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>/).map { (String($0.output.1).lowercased(), String($0.output.2)) }
        #expect(tags.count > 100)
        let loaders: Set = ["link", "img", "iframe", "frame", "object", "embed", "base", "video", "audio", "source", "picture", "form", "image", "use", "feimage"]
        #expect(tags.filter { loaders.contains($0.0) }.map { $0.0 } == [])
        let scripts = tags.filter { $0.0 == "script" }
        #expect(scripts.map { $0.1 } == [" type=\"application/json\" id=\"report-data\""])
        for (name, attributes) in tags {
            for match in attributes.matches(of: /([a-zA-Z:-]+)(\s*=\s*("[^"]*"|\S+))?/) {
                let attribute = String(match.output.1).lowercased()
                let value = match.output.3.map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? ""
                #expect(!["src", "srcset", "action", "formaction", "poster", "data", "background", "ping", "xlink:href", "xmlns"].contains(attribute),
                        "<\(name)> has \(attribute)=\(value)")
                #expect(!attribute.hasPrefix("on"), "<\(name)> has an event handler \(attribute)")
                if attribute == "href" { #expect(value.hasPrefix("#"), "<\(name)> links to \(value)") }
                if attribute == "style" { #expect(!value.contains("url(") && !value.contains("//")) }
            }
        }
        let stylesheet = try #require(html.firstMatch(of: /<style>([^<]*)<\/style>/)).output.1
        for loading in ["url(", "@import", "image-set(", "http", "//", "@font-face"] {
            #expect(!stylesheet.contains(loading), "the stylesheet has \(loading)")
        }
        let policy = attributeValues("content", in: html).first { $0.hasPrefix("default-src") }
        #expect(policy == "default-src 'none'; style-src 'unsafe-inline'")
    }

    @Test("every check's status word, name, summary and evidence, escaped; the failure's evidence open, a pass's there too")
    func checksAndEvidence() throws {
        let report = report
        let html = report.html()
        for (index, check) in report.checks.enumerated() {
            let section = try #require(html.firstMatch(of: try Regex("<section class=\"check \(check.status.rawValue)\" id=\"check-\(index + 1)\">(?s:.*?)</section>")))
            let text = String(section.output[0].substring ?? "")
            #expect(text.contains("<span class=\"status\">\(VerifyReport.word(check.status))</span> \(XML.escape(check.name))</h3>"))
            #expect(text.contains("<p class=\"summary\">\(XML.escape(check.summary))</p>"))
            for line in VerifyReport.evidenceLines(check.evidence) {
                #expect(text.contains(XML.escape(line)), "check \(index + 1) lacks its evidence \(line)")
            }
            #expect(text.contains("<details class=\"evidence\" open>") == (check.status == .fail && !check.evidence.isEmpty))
        }
        #expect(html.contains(XML.escape(RenderTests.nasty)))
        #expect(html.contains("systemctl stop wayshub on app2"))
        #expect(html.contains("<a href=\"#check-4\">http://wayshub.lab/ answers &lt;through&gt; the proxy</a>"))
    }

    @Test("the heading: lab, domain, proxy, start, duration, the tally; the banner only when interrupted")
    func heading() {
        var report = report
        let html = report.html()
        #expect(html.contains("<h1>labctl verify: wayshub-lab</h1>"))
        #expect(html.contains("<dd>http://wayshub.lab/</dd>"))
        #expect(html.contains("<dd>198.18.42.10:80</dd>"))
        #expect(html.contains("<time datetime=\"2027-01-15T08:00:00Z\">2027-01-15 08:00:00 UTC</time>"))
        #expect(html.contains("<dd>1.2 s</dd>") || html.contains("<dd>1.3 s</dd>"))
        #expect(html.contains("<span class=\"verdict fail\">FAILED</span> 7 checks: 4 passed, 1 failed, 1 for information, 1 skipped</p>"))
        #expect(!html.contains("class=\"banner\""))
        report.interrupted = true
        report.checks.removeAll { $0.status == .fail }
        let interrupted = report.html()
        #expect(interrupted.contains("<p class=\"banner\" role=\"alert\"><strong>INTERRUPTED</strong>"))
        #expect(interrupted.contains("<span class=\"verdict interrupted\">INTERRUPTED</span>"))
    }

    @Test("distributions as bars: width = share, the expected marker, backup and stopped labelled; latency in words")
    func distributionsAndLatency() {
        let html = report.html()
        #expect(html.contains("<th scope=\"row\">app1</th><td class=\"num\">26</td><td class=\"num\">52.0 %</td><td class=\"bar\"><div class=\"track\"><div class=\"fill\" style=\"width: 52.0%\"></div><div class=\"expected\" style=\"left: 50.0%\"></div></div><span class=\"expected-text\">expected 50 %</span>"))
        #expect(html.contains("<tr class=\"share stopped\"><th scope=\"row\">app2 <span class=\"tag\">stopped</span></th><td class=\"num\">0</td>"))
        #expect(html.contains("<tr class=\"share backup\"><th scope=\"row\">app3 <span class=\"tag\">backup</span></th><td class=\"num\">20</td><td class=\"num\">40.0 %</td><td class=\"bar\"><div class=\"track\"><div class=\"fill\" style=\"width: 40.0%\"></div></div></td>"))
        let latency = LatencySummary(requests: 600, errors: 0, p50: 2.5, p95: 7, p99: 9.5, max: 180, rate: 19.9)
        #expect(html.contains("<p class=\"latency\">\(VerifyReport.describe(latency))</p>"))
    }

    @Test("hostile text is text: no element, comment or script end from the report; the JSON keeps it exactly")
    func hostileText() throws {
        let report = hostileReport
        let html = report.html()
        #expect(!html.lowercased().contains("<img"))
        #expect(!html.contains("<!--"))
        #expect(html.components(separatedBy: "</script>").count == 2)
        #expect(html.contains("<h1>labctl verify: &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"))
        let data = try reportData(in: html)
        #expect(data.contains("\\u003c/script\\u003e\\u003cimg"))
        #expect(!data.contains("\u{2028}") && !data.contains("\u{2029}") && data.contains("\\u2028\\u2029"))
        let back = try VerifyReport.decode(json: Data(data.utf8))
        #expect(back == report)
    }

    @Test("the embedded JSON parses back to the report and its timeline")
    func embeddedJSON() throws {
        let report = report
        let back = try VerifyReport.decode(json: Data(try reportData(in: report.html()).utf8))
        #expect(back.timeline == report.timeline)
        #expect(back == report)
        var withoutDrill = report
        withoutDrill.timeline = nil
        let html = withoutDrill.html()
        let backWithoutDrill = try VerifyReport.decode(json: Data(try reportData(in: html).utf8))
        #expect(backWithoutDrill.timeline == nil)
        #expect(!html.contains("data-series") && !html.contains("id=\"drill\""))
    }

    @Test("the chart: one series per app server, errors, p50, p99; one mark per event; a table of every bucket")
    func chart() throws {
        let timeline = drillTimeline()
        var report = report
        report.timeline = timeline
        let html = report.html()
        #expect(attributeValues("data-series", in: html) == ["app1", "app2", "app3", "errors", "p50", "p99"])
        let marks = html.matches(of: /<g class="mark" data-mark="([a-z]+)" data-server="([^"]*)"/).map { "\($0.output.1) \($0.output.2)" }
        #expect(marks.sorted() == timeline.events.map { "\($0.kind.rawValue) \($0.server)" }.sorted())
        // A dot with its value per bucket and series; p50 and p99 have none in the last bucket.
        #expect(html.components(separatedBy: "<circle").count - 1 == 30 * 4 + 29 * 2)
        #expect(html.contains("<title>app2: 10 requests/s answered (10 in 3–4 s)</title>"))
        #expect(html.contains("<title>p99: 180.0 ms (3–4 s)</title>"))
        #expect(html.contains("<title>app1 down at 3.0 s: systemctl stop wayshub</title>"))
        let rows = try #require(html.firstMatch(of: /<table class="buckets">(?s:.*?)<\/table>/)).output
        #expect(rows.components(separatedBy: "<tr><th scope=\"row\">").count - 1 == 30)
        #expect(rows.contains("<tr><th scope=\"row\">3–4</th><td class=\"num\">0</td><td class=\"num\">10</td><td class=\"num\">10</td><td class=\"num\">2</td><td class=\"num\">2.9</td><td class=\"num\">180.0</td></tr>"))
    }

    @Test("an \"unknown\" series only when some bucket counted an answer under it")
    func unknownSeries() {
        var report = report
        #expect(!attributeValues("data-series", in: report.html()).contains("unknown"))
        report.timeline = drillTimeline(unknownAt: 5)
        #expect(attributeValues("data-series", in: report.html()) == ["app1", "app2", "app3", "unknown", "errors", "p50", "p99"])
    }
}

/// Debian's chromium, run headless on a page.
enum HeadlessChromium {
    static let executable = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let deadline = 60

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs chromium headless on `page` with its own profile under `folder`, killed after
    /// `deadline` seconds (`timeout` ends its whole process group); then ends any process still
    /// holding that profile (a helper that left the group), by its PID.
    static func run(_ arguments: [String], page: String, in folder: TemporaryDirectory) throws -> LocalResult {
        let profile = folder.file("profile-\(UUID().uuidString.prefix(8))")
        defer { endProcesses(using: profile) }
        let result = try runLocal(
            ["timeout", "--kill-after=5", "\(deadline)", try #require(executable),
             "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", "--user-data-dir=\(profile)"]
                + arguments + [URL(fileURLWithPath: page).absoluteString],
            check: false)
        guard result.status != 124 && result.status != 137 else {
            throw Failed(description: "chromium \(arguments.joined(separator: " ")) did not finish within \(deadline) s")
        }
        return result
    }

    static func endProcesses(using profile: String) {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        for pid in pids where pid != getpid() {
            guard let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            if String(decoding: commandLine, as: UTF8.self).contains(profile) {
                kill(pid, SIGKILL)
            }
        }
    }
}

/// The report as a browser shows it: headless Chromium's screenshot and the DOM it built.
/// CI has chromium from scripts/install-deps.sh (the Debian package).
@Suite(.serialized, .enabled(if: HeadlessChromium.executable != nil, "chromium is not installed: run scripts/install-deps.sh"))
struct HTMLReportChromiumTests {
    /// A PNG's width and height from its IHDR chunk, nil when the data is no PNG.
    static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], bytes[12..<16] == [0x49, 0x48, 0x44, 0x52] else {
            return nil
        }
        func number(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (number(16), number(20))
    }

    var report: VerifyReport {
        var report = HTMLReportTests().hostileReport
        report.lab = "wayshub-lab"
        return report
    }

    @Test("the screenshot is a 1280×2400 PNG with far more in it than a blank page's")
    func screenshot() throws {
        let folder = try TemporaryDirectory(prefix: "labctl-html")
        defer { folder.remove() }
        let page = folder.file("report.html"), blank = folder.file("blank.html")
        try report.html().write(toFile: page, atomically: true, encoding: .utf8)
        try "<!DOCTYPE html><title>blank</title>".write(toFile: blank, atomically: true, encoding: .utf8)
        var sizes: [String: Int] = [:]
        for (name, file) in [("report", page), ("blank", blank)] {
            let png = folder.file("\(name).png")
            let result = try HeadlessChromium.run(["--screenshot=\(png)", "--window-size=1280,2400"], page: file, in: folder)
            let data = try #require(FileManager.default.contents(atPath: png), "chromium wrote no \(name).png: exit \(result.status), \(result.stderr.suffix(2000))")
            let size = try #require(Self.pngSize(data), "\(name).png is not a PNG")
            #expect(size.width == 1280 && size.height == 2400, "\(name).png is \(size.width)×\(size.height)")
            sizes[name] = data.count
        }
        // A blank page compresses to almost nothing; the report's text, bars and chart do not.
        let reportSize = try #require(sizes["report"]), blankSize = try #require(sizes["blank"])
        #expect(reportSize > 20_000 && reportSize > 8 * blankSize, "report.png \(reportSize) bytes, a blank page's \(blankSize)")
    }

    @Test("the DOM chromium built: one series per app server plus errors, p50 and p99; one mark per event; nothing loaded, no element injected")
    func renderedDOM() throws {
        let report = report
        let timeline = try #require(report.timeline)
        let folder = try TemporaryDirectory(prefix: "labctl-html")
        defer { folder.remove() }
        let page = folder.file("report.html")
        try report.html().write(toFile: page, atomically: true, encoding: .utf8)
        let result = try HeadlessChromium.run(["--dump-dom"], page: page, in: folder)
        let dom = result.stdout
        try #require(dom.contains("</html>"), "no DOM from chromium: exit \(result.status), \(result.stderr.suffix(2000))")
        #expect(attributeValues("data-series", in: dom).sorted() == (timeline.servers + ["errors", "p50", "p99"]).sorted())
        let marks = dom.matches(of: /<g [^>]*data-mark="([a-z]+)"[^>]*data-server="([^"]*)"/).map { "\($0.output.1) \($0.output.2)" }
        #expect(marks.sorted() == timeline.events.map { "\($0.kind.rawValue) \($0.server)" }.sorted())
        #expect(!dom.lowercased().contains("<img"))
        #expect(dom.contains("labctl verify: wayshub-lab"))
        // Chromium logs every load the page's policy refused: the page must have tried none.
        #expect(!result.stderr.contains("Content Security Policy"), "\(result.stderr.split(separator: "\n").filter { $0.contains("Content Security Policy") })")
    }
}
