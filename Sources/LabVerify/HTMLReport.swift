import Foundation

extension VerifyReport {
    // MARK: - HTML

    /// The report as one HTML5 file that a student hands in and an instructor projects or
    /// prints: every check with all its evidence, the distributions as bars, the drill as a
    /// chart, and the report's JSON inside for tools.
    ///
    /// Self-contained on purpose: it is opened from a mail, a learning platform or a USB stick,
    /// offline and years later, so it loads nothing. Its Content-Security-Policy says so to the
    /// browser as well, which then refuses any load or script even if one slipped in. The chart
    /// is static SVG drawn here, not by a script in the page: it then shows where scripts do not
    /// run (a platform's preview, a mail reader, print) and its numbers come from one place.
    public func html() -> String {
        var body = heading()
        for (index, check) in checks.enumerated() {
            body += Self.section(check, id: "check-\(index + 1)")
        }
        if let timeline {
            body += timeline.section()
        }
        body += "</main>\n"
        if let data = embeddedJSON() {
            // A data block: the browser never runs it (and the policy allows no script anyway).
            body += "<script type=\"application/json\" id=\"report-data\">\(data)</script>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="labctl verify">
            <title>\(XML.escape("labctl verify: \(lab)"))</title>
            <style>\(Self.stylesheet)</style>
            </head>
            <body>
            \(body)</body>
            </html>

            """
    }

    /// The verdict in one word, for the heading.
    private var verdict: (word: String, style: String) {
        if !failures.isEmpty { return ("FAILED", "fail") }
        return interrupted ? ("INTERRUPTED", "interrupted") : ("PASSED", "pass")
    }

    private func heading() -> String {
        var facts: [(String, String)] = []
        if let domain { facts.append(("Domain", XML.escape("http://\(domain)/"))) }
        if let proxy { facts.append(("Proxy", XML.escape(proxy))) }
        let started = ISO8601DateFormatter().string(from: startedAt)
        facts.append(("Started", "<time datetime=\"\(started)\">\(XML.escape(Self.readableTime(startedAt)))</time>"))
        facts.append(("Duration", String(format: "%.1f s", seconds)))
        var html = "<header>\n<h1>\(XML.escape("labctl verify: \(lab)"))</h1>\n<dl class=\"facts\">\n"
        for (term, value) in facts {
            html += "<dt>\(term)</dt><dd>\(value)</dd>\n"
        }
        html += "</dl>\n"
        html += "<p class=\"tally\"><span class=\"verdict \(verdict.style)\">\(verdict.word)</span> \(XML.escape(tally))</p>\n"
        if interrupted {
            html += "<p class=\"banner\" role=\"alert\"><strong>INTERRUPTED</strong>: the run was cut short (Ctrl-C); the checks it did not reach are missing from this report.</p>\n"
        }
        let failed = checks.indices.filter { checks[$0].status == .fail }
        if !failed.isEmpty {
            html += "<nav class=\"failed\"><strong>Failed:</strong><ul>\n"
            for index in failed {
                html += "<li><a href=\"#check-\(index + 1)\">\(XML.escape(checks[index].name))</a></li>\n"
            }
            html += "</ul></nav>\n"
        }
        html += "</header>\n<main>\n<h2>Checks</h2>\n"
        return checks.isEmpty ? html + "<p>No check ran.</p>\n" : html
    }

    /// UTC, so that the student's and the instructor's time zones tell the same time.
    private static func readableTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: date)
    }

    private static func section(_ check: CheckResult, id: String) -> String {
        var html = "<section class=\"check \(check.status.rawValue)\" id=\"\(id)\">\n"
        html += "<h3><span class=\"status\">\(word(check.status))</span> \(XML.escape(check.name))</h3>\n"
        html += "<p class=\"summary\">\(XML.escape(check.summary))</p>\n"
        var meta = [check.kind.rawValue]
        if let host = check.host { meta.append("host \(host)") }
        meta.append(String(format: "%.3f s", check.seconds))
        html += "<p class=\"meta\">\(XML.escape(meta.joined(separator: " · ")))</p>\n"
        if let shares = check.distribution, !shares.isEmpty {
            html += distribution(shares)
        }
        if let latency = check.latency {
            html += "<p class=\"latency\">\(XML.escape(describe(latency)))</p>\n"
        }
        let lines = evidenceLines(check.evidence)
        if lines.isEmpty {
            html += "<p class=\"no-evidence\">No evidence recorded.</p>\n"
        } else {
            // Open for a failure: that is what the reader came for; a pass's stays a click away.
            html += "<details class=\"evidence\"\(check.status == .fail ? " open" : "")><summary>Evidence</summary>"
            html += "<pre>\(lines.map(XML.escape).joined(separator: "\n"))</pre></details>\n"
        }
        return html + "</section>\n"
    }

    private static func distribution(_ shares: [ServerShare]) -> String {
        func percent(_ share: Double) -> String { String(format: "%.1f", min(max(share, 0), 1) * 100) }
        var html = "<table class=\"shares\">\n<thead><tr><th scope=\"col\">server</th><th scope=\"col\">requests</th>"
        html += "<th scope=\"col\">share</th><th scope=\"col\" class=\"bar\">share of the requests (dashed line: expected)</th></tr></thead>\n<tbody>\n"
        for share in shares {
            var classes = ["share"]
            var tags = ""
            if share.backup { classes.append("backup"); tags += " <span class=\"tag\">backup</span>" }
            if share.stopped { classes.append("stopped"); tags += " <span class=\"tag\">stopped</span>" }
            html += "<tr class=\"\(classes.joined(separator: " "))\"><th scope=\"row\">\(XML.escape(share.server))\(tags)</th>"
            html += "<td class=\"num\">\(share.count)</td>"
            html += "<td class=\"num\">" + String(format: "%.1f %%", share.share * 100) + "</td>"
            html += "<td class=\"bar\"><div class=\"track\"><div class=\"fill\" style=\"width: \(percent(share.share))%\"></div>"
            if let expected = share.expectedShare {
                html += "<div class=\"expected\" style=\"left: \(percent(expected))%\"></div></div>"
                html += "<span class=\"expected-text\">" + String(format: "expected %.0f %%", expected * 100) + "</span>"
            } else {
                html += "</div>"
            }
            html += "</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    /// The report's JSON made safe inside a <script> element: `<` (so that no `</script>` or
    /// `<!--` in a check's text can end or change the element), `>` and `&` as \u escapes, which
    /// JSON reads back as the same characters; U+2028 and U+2029 too, which old JavaScript
    /// parsers take for line ends inside a string. All of them occur only inside JSON strings.
    func embeddedJSON() -> String? {
        // JSON cannot hold a NaN or an infinity: the page then goes without its data, not without
        // its report.
        guard let data = try? json() else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        for (character, escape) in [("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u{2028}", "\\u2028"), ("\u{2029}", "\\u2029")] {
            text = text.replacingOccurrences(of: character, with: escape)
        }
        return text
    }

    /// Large type for a projector, status words that carry the meaning without colour (a fail is
    /// a filled dark badge and a thick border, a pass an outlined one), and print rules.
    private static let stylesheet = """

        :root { color-scheme: light; }
        * { box-sizing: border-box; }
        body { font: 20px/1.45 system-ui, "Segoe UI", "DejaVu Sans", sans-serif; color: #111; background: #fff;
          max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; }
        h1 { font-size: 2em; margin: 0 0 .3em; }
        h2 { font-size: 1.5em; margin: 1.4em 0 .5em; border-bottom: 3px solid #111; }
        h3 { font-size: 1.15em; margin: 0 0 .2em; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; margin: 0; }
        dl.facts dt { font-weight: 700; }
        dl.facts dd { margin: 0; overflow-wrap: anywhere; }
        .tally { font-size: 1.3em; font-weight: 700; margin: .7em 0; }
        .verdict { display: inline-block; padding: .05em .5em; border: 3px solid #111; border-radius: 6px; margin-right: .4em; letter-spacing: .05em; }
        .verdict.fail { background: #991b1b; border-color: #991b1b; color: #fff; }
        .verdict.pass { color: #166534; border-color: #166534; }
        .verdict.interrupted { background: #fde68a; }
        .banner { border: 4px double #111; background: #fde68a; padding: .6em 1em; font-size: 1.15em; }
        nav.failed ul { margin: .2em 0; }
        nav.failed a { color: #991b1b; font-weight: 700; }
        .check { border: 2px solid #6b7280; border-left-width: 14px; border-radius: 6px; padding: .6em 1em; margin: .9em 0; break-inside: avoid; }
        .check.pass { border-color: #166534; }
        .check.fail { border-color: #991b1b; border-width: 4px 4px 4px 18px; background: #fef2f2; }
        .check.info { border-color: #1e40af; border-style: dotted; border-left-style: solid; }
        .check.skipped { border-color: #6b7280; border-style: dashed; border-left-style: solid; color: #374151; }
        .status { display: inline-block; min-width: 4.4em; text-align: center; font-weight: 800; letter-spacing: .06em;
          padding: 0 .4em; margin-right: .5em; border: 2px solid currentColor; border-radius: 4px; }
        .pass .status { color: #166534; }
        .fail .status { color: #fff; background: #991b1b; border-color: #991b1b; }
        .info .status { color: #1e40af; }
        .skipped .status { color: #374151; border-style: dashed; }
        .summary { margin: .2em 0; font-size: 1.05em; }
        .meta { margin: .1em 0; color: #4b5563; font-size: .85em; }
        .latency { margin: .3em 0; font-variant-numeric: tabular-nums; }
        .no-evidence { color: #4b5563; font-size: .85em; margin: .2em 0; }
        details.evidence summary { cursor: pointer; font-weight: 700; }
        pre { white-space: pre-wrap; overflow-wrap: anywhere; font: .8em/1.4 ui-monospace, "DejaVu Sans Mono", monospace;
          background: #f3f4f6; border: 1px solid #d1d5db; padding: .5em .7em; margin: .3em 0; }
        table { border-collapse: collapse; margin: .5em 0; font-variant-numeric: tabular-nums; }
        th, td { padding: .15em .6em; text-align: left; border-bottom: 1px solid #d1d5db; vertical-align: middle; }
        td.num { text-align: right; }
        table.shares { width: 100%; }
        table.shares th.bar, table.shares td.bar { width: 50%; }
        .track { position: relative; height: 1.1em; background: #e5e7eb; border: 1px solid #374151; }
        .fill { height: 100%; background: #1e40af; }
        .stopped .fill { background: #9ca3af; }
        .backup .fill { background: #7c3aed; }
        .expected { position: absolute; top: -.3em; bottom: -.3em; border-left: 3px dashed #111; }
        .expected-text { font-size: .75em; color: #374151; }
        .tag { font-size: .7em; font-weight: 700; text-transform: uppercase; border: 1px solid #111; border-radius: 3px; padding: 0 .3em; margin-left: .3em; }
        figure.chart { margin: .5em 0; }
        figure.chart svg.timeline { width: 100%; height: auto; display: block; }
        svg text { font: 13px system-ui, "DejaVu Sans", sans-serif; }
        svg .axis line, svg .axis path { stroke: #111; }
        svg .grid line { stroke: #d1d5db; }
        svg .mark text { font-weight: 700; }
        ul.legend { list-style: none; padding: 0; margin: .4em 0; display: flex; flex-wrap: wrap; gap: .3em 1.4em; }
        ul.legend li { white-space: nowrap; }
        ul.legend svg { vertical-align: middle; margin-right: .3em; }
        table.buckets, table.events { font-size: .8em; }
        caption { text-align: left; font-weight: 700; padding: .3em 0; }
        @page { margin: 14mm; }
        @media print {
          body { font-size: 11pt; max-width: none; padding: 0; }
          * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
          details::details-content { content-visibility: visible; }
          details.evidence summary { list-style: none; }
          nav.failed a { text-decoration: none; }
          figure.chart, table.shares tr, .check { break-inside: avoid; }
        }

        """
}

extension DrillTimeline {
    /// The servers with a series: the inventory's, then any other name an answer was counted
    /// under ("unknown": an answer no server could be matched to), only when one was.
    var answeringServers: [String] {
        let others = Set(buckets.flatMap(\.answered.keys)).subtracting(servers)
        return servers + others.sorted()
    }

    fileprivate func section() -> String {
        let chart = TimelineChart(timeline: self)
        var html = "<section id=\"drill\">\n<h2>The failover drill over time</h2>\n"
        html += "<figure class=\"chart\">\n\(chart.svg())\n<figcaption>\(chart.legend())</figcaption>\n</figure>\n"
        html += bucketTable() + eventTable()
        return html + "</section>\n"
    }

    /// The chart's numbers, for a reader without SVG and for print.
    private func bucketTable() -> String {
        let names = answeringServers
        var html = "<table class=\"buckets\">\n<caption>"
        html += XML.escape(String(format: "Each %g s of the drill: answers by app server, failed requests, latency of the answers", bucketSeconds))
        html += "</caption>\n<thead><tr><th scope=\"col\">seconds</th>"
        for name in names { html += "<th scope=\"col\">\(XML.escape(name))</th>" }
        html += "<th scope=\"col\">errors</th><th scope=\"col\">p50 ms</th><th scope=\"col\">p99 ms</th></tr></thead>\n<tbody>\n"
        for bucket in buckets {
            html += "<tr><th scope=\"row\">" + String(format: "%g–%g", bucket.start, bucket.start + bucketSeconds) + "</th>"
            for name in names { html += "<td class=\"num\">\(bucket.answered[name] ?? 0)</td>" }
            html += "<td class=\"num\">\(bucket.errors)</td>"
            html += "<td class=\"num\">\(Self.milliseconds(bucket.p50))</td><td class=\"num\">\(Self.milliseconds(bucket.p99))</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    private func eventTable() -> String {
        guard !events.isEmpty else { return "" }
        var html = "<table class=\"events\">\n<caption>Events</caption>\n"
        html += "<thead><tr><th scope=\"col\">at (s)</th><th scope=\"col\">server</th><th scope=\"col\">event</th><th scope=\"col\">how</th></tr></thead>\n<tbody>\n"
        for event in events {
            html += "<tr><td class=\"num\">" + String(format: "%.1f", event.at) + "</td><td>\(XML.escape(event.server))</td>"
            html += "<td>\(event.kind.rawValue)</td><td>\(XML.escape(event.how))</td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    fileprivate static func milliseconds(_ value: Double?) -> String {
        value.map { String(format: "%.1f", $0) } ?? "–"
    }
}

/// The drill's chart: requests per second answered by each app server and failed, on top;
/// latency p50 and p99 below, on the same time axis; a vertical mark through both for each
/// event. Each series is one element with `data-series`, each mark one with `data-mark` and
/// `data-server`, for tests and tools; every point has a <title>, which a browser shows on hover.
private struct TimelineChart {
    let timeline: DrillTimeline

    /// Lines that differ by dash as well as colour (Okabe and Ito's palette, which reads with
    /// colour blindness), so that a greyscale print still tells them apart.
    struct Style {
        var colour: String
        var dash: String
        var width: Double
    }

    static let serverStyles = [
        Style(colour: "#0072B2", dash: "", width: 2.5),
        Style(colour: "#E69F00", dash: "9 4", width: 2.5),
        Style(colour: "#009E73", dash: "3 3", width: 2.5),
        Style(colour: "#CC79A7", dash: "12 3 3 3", width: 2.5),
        Style(colour: "#56B4E9", dash: "6 2 1 2", width: 2.5),
        Style(colour: "#000000", dash: "1 3", width: 2.5),
    ]
    /// Answers no inventory server could be matched to: grey, they belong to no one.
    static let unknownStyle = Style(colour: "#6B7280", dash: "2 2", width: 2)
    static let errorsStyle = Style(colour: "#D55E00", dash: "", width: 4)
    static let p50Style = Style(colour: "#0072B2", dash: "", width: 2.5)
    static let p99Style = Style(colour: "#D55E00", dash: "8 4", width: 2.5)
    static let markStyles: [DrillEvent.Kind: Style] = [
        .down: Style(colour: "#B91C1C", dash: "", width: 2),
        .restored: Style(colour: "#B45309", dash: "7 4", width: 2),
        .back: Style(colour: "#15803D", dash: "2 3", width: 2.5),
    ]

    /// The style of the `index`th series of `DrillTimeline.answeringServers`.
    func serverStyle(_ index: Int, _ name: String) -> Style {
        timeline.servers.contains(name) ? Self.serverStyles[index % Self.serverStyles.count] : Self.unknownStyle
    }

    // The canvas, in SVG units; the browser scales it to the page's width.
    let width = 1000.0
    let left = 70.0, right = 20.0
    /// Room for three rows of event labels, staggered so that close events stay readable.
    let labelRows = 3
    var top: Double { 18 + Double(labelRows) * 17 }
    let rateHeight = 260.0
    let gap = 64.0
    let latencyHeight = 170.0
    let bottom = 52.0
    var rateTop: Double { top }
    var rateBottom: Double { rateTop + rateHeight }
    var latencyTop: Double { rateBottom + gap }
    var latencyBottom: Double { latencyTop + latencyHeight }
    var height: Double { latencyBottom + bottom }
    var plotWidth: Double { width - left - right }

    var bucketSeconds: Double { timeline.bucketSeconds > 0 ? timeline.bucketSeconds : 1 }

    var seconds: Double {
        let lastBucket = timeline.buckets.map { $0.start + bucketSeconds }.max() ?? 0
        let lastEvent = timeline.events.map(\.at).max() ?? 0
        return max(lastBucket, lastEvent, 1)
    }

    func x(_ second: Double) -> Double { left + plotWidth * min(max(second, 0), seconds) / seconds }

    /// A point is drawn at the middle of its bucket: the requests it counts came in all along it.
    func middle(_ bucket: TimelineBucket) -> Double { x(bucket.start + bucketSeconds / 2) }

    func y(_ value: Double, top: Double, bottom: Double, scale: Double) -> Double {
        bottom - (bottom - top) * min(max(value, 0), scale) / scale
    }

    /// A round top for an axis and its step (1, 2 or 5 times a power of ten), about `count` ticks.
    static func axis(upTo maximum: Double, ticks count: Double = 5) -> (top: Double, step: Double) {
        guard maximum > 0, maximum.isFinite else { return (1, 0.2) }
        let raw = maximum / count
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        return ((maximum / step).rounded(.up) * step, step)
    }

    static func number(_ value: Double) -> String { String(format: "%g", value) }
    static func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }

    func span(_ bucket: TimelineBucket) -> String {
        String(format: "%g–%g s", bucket.start, bucket.start + bucketSeconds)
    }

    func svg() -> String {
        let names = timeline.answeringServers
        let rates = timeline.buckets.flatMap { bucket in
            names.map { Double(bucket.answered[$0] ?? 0) } + [Double(bucket.errors)]
        }.map { $0 / bucketSeconds }
        let rateAxis = Self.axis(upTo: rates.max() ?? 0)
        let latencyAxis = Self.axis(upTo: timeline.buckets.compactMap { [$0.p50, $0.p99].compactMap { $0 }.max() }.max() ?? 0)

        var svg = "<svg class=\"timeline\" viewBox=\"0 0 \(Self.coordinate(width)) \(Self.coordinate(height))\" role=\"img\" aria-labelledby=\"drill-chart-title\">\n"
        svg += "<title id=\"drill-chart-title\">The failover drill: requests per second answered by each app server and failed; latency p50 and p99</title>\n"
        svg += axes(rateAxis: rateAxis, latencyAxis: latencyAxis)
        // The marks under the series, so that no line hides a point's dot.
        svg += marks()

        for (index, name) in names.enumerated() {
            let style = serverStyle(index, name)
            let points = timeline.buckets.map { bucket -> (Double, String)? in
                let count = bucket.answered[name] ?? 0
                let rate = Double(count) / bucketSeconds
                return (rate, "\(name): \(Self.number(rate)) requests/s answered (\(count) in \(span(bucket)))")
            }
            svg += series(name, style: style, points: points, top: rateTop, bottom: rateBottom, scale: rateAxis.top)
        }
        let errors = timeline.buckets.map { bucket -> (Double, String)? in
            let rate = Double(bucket.errors) / bucketSeconds
            return (rate, "errors: \(Self.number(rate)) failed requests/s (\(bucket.errors) in \(span(bucket)))")
        }
        svg += series("errors", style: Self.errorsStyle, points: errors, top: rateTop, bottom: rateBottom, scale: rateAxis.top)
        for (name, style, value) in [("p50", Self.p50Style, \TimelineBucket.p50), ("p99", Self.p99Style, \TimelineBucket.p99)] {
            let points = timeline.buckets.map { bucket -> (Double, String)? in
                bucket[keyPath: value].map { ($0, "\(name): " + String(format: "%.1f ms", $0) + " (\(span(bucket)))") }
            }
            svg += series(name, style: style, points: points, top: latencyTop, bottom: latencyBottom, scale: latencyAxis.top)
        }
        return svg + "</svg>"
    }

    private func axes(rateAxis: (top: Double, step: Double), latencyAxis: (top: Double, step: Double)) -> String {
        let c = Self.coordinate
        var svg = "<g class=\"grid\">\n"
        var labels = "<g class=\"axis\">\n"
        for (axisTop, step, panelTop, panelBottom, title) in [
            (rateAxis.top, rateAxis.step, rateTop, rateBottom, "requests per second"),
            (latencyAxis.top, latencyAxis.step, latencyTop, latencyBottom, "latency of the answers, ms"),
        ] {
            var value = 0.0
            while value <= axisTop + step / 2 {
                let y = self.y(value, top: panelTop, bottom: panelBottom, scale: axisTop)
                svg += "<line x1=\"\(c(left))\" y1=\"\(c(y))\" x2=\"\(c(width - right))\" y2=\"\(c(y))\"/>\n"
                labels += "<text x=\"\(c(left - 6))\" y=\"\(c(y + 4))\" text-anchor=\"end\">\(Self.number(value))</text>\n"
                value += step
            }
            labels += "<text x=\"\(c(left))\" y=\"\(c(panelTop - 6))\" font-weight=\"700\">\(title)</text>\n"
            labels += "<path fill=\"none\" d=\"M\(c(left)) \(c(panelTop))V\(c(panelBottom))H\(c(width - right))\"/>\n"
        }
        let timeAxis = Self.axis(upTo: seconds, ticks: 10)
        var second = 0.0
        while second <= seconds + timeAxis.step / 100 {
            let x = self.x(second)
            for panelBottom in [rateBottom, latencyBottom] {
                labels += "<line x1=\"\(c(x))\" y1=\"\(c(panelBottom))\" x2=\"\(c(x))\" y2=\"\(c(panelBottom + 5))\"/>\n"
                labels += "<text x=\"\(c(x))\" y=\"\(c(panelBottom + 19))\" text-anchor=\"middle\">\(Self.number(second))</text>\n"
            }
            second += timeAxis.step
        }
        labels += "<text x=\"\(c(left + plotWidth / 2))\" y=\"\(c(latencyBottom + 42))\" text-anchor=\"middle\">seconds since the drill began</text>\n"
        return svg + "</g>\n" + labels + "</g>\n"
    }

    /// One series: a line through its points (broken where a bucket has no value, e.g. no
    /// latency when nothing answered) and a dot with a <title> at each.
    private func series(_ name: String, style: Style, points: [(Double, String)?], top: Double, bottom: Double, scale: Double) -> String {
        let c = Self.coordinate
        var path = ""
        var dots = ""
        var drawing = false
        for (bucket, point) in zip(timeline.buckets, points) {
            guard let point else {
                drawing = false
                continue
            }
            let (value, title) = point
            let x = middle(bucket), y = self.y(value, top: top, bottom: bottom, scale: scale)
            path += (drawing ? "L" : "M") + "\(c(x)) \(c(y))"
            drawing = true
            dots += "<circle cx=\"\(c(x))\" cy=\"\(c(y))\" r=\"4\"><title>\(XML.escape(title))</title></circle>\n"
        }
        var svg = "<g class=\"series\" data-series=\"\(XML.escape(name))\" stroke=\"\(style.colour)\" fill=\"\(style.colour)\">\n"
        svg += "<path fill=\"none\" stroke-width=\"\(style.width)\" stroke-linejoin=\"round\""
        svg += style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\""
        svg += " d=\"\(path)\"/>\n"
        return svg + dots + "</g>\n"
    }

    private func marks() -> String {
        let c = Self.coordinate
        // Staggered by time, so that a server's down and the next one's labels do not overlap.
        let ordered = timeline.events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
        var svg = ""
        for (row, (_, event)) in ordered.enumerated() {
            let style = Self.markStyles[event.kind] ?? Self.serverStyles[0]
            let x = self.x(event.at)
            let labelY = 16 + Double(row % labelRows) * 17
            let anchorAtEnd = x > width - right - 150
            let label = "\(event.server) \(event.kind.rawValue)"
            let title = "\(event.server) \(event.kind.rawValue) at " + String(format: "%.1f s", event.at) + (event.how.isEmpty ? "" : ": \(event.how)")
            svg += "<g class=\"mark\" data-mark=\"\(event.kind.rawValue)\" data-server=\"\(XML.escape(event.server))\" stroke=\"\(style.colour)\">"
            svg += "<title>\(XML.escape(title))</title>"
            svg += "<line x1=\"\(c(x))\" y1=\"\(c(labelY + 4))\" x2=\"\(c(x))\" y2=\"\(c(latencyBottom))\" stroke-width=\"\(style.width)\""
            svg += style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\""
            svg += "/><text x=\"\(c(anchorAtEnd ? x - 4 : x + 4))\" y=\"\(c(labelY))\" text-anchor=\"\(anchorAtEnd ? "end" : "start")\" stroke=\"none\" fill=\"\(style.colour)\">\(XML.escape(label))</text></g>\n"
        }
        return svg
    }

    /// The key, in HTML under the chart: a short line in each series' or mark's style.
    func legend() -> String {
        func sample(_ style: Style) -> String {
            "<svg width=\"44\" height=\"14\" viewBox=\"0 0 44 14\" aria-hidden=\"true\"><line x1=\"2\" y1=\"7\" x2=\"42\" y2=\"7\" stroke=\"\(style.colour)\" stroke-width=\"\(style.width)\""
                + (style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\"") + "/></svg>"
        }
        var entries: [(Style, String)] = []
        for (index, name) in timeline.answeringServers.enumerated() {
            entries.append((serverStyle(index, name), "\(name) answered (requests/s)"))
        }
        entries.append((Self.errorsStyle, "errors (failed requests/s)"))
        entries.append((Self.p50Style, "latency p50 (ms)"))
        entries.append((Self.p99Style, "latency p99 (ms)"))
        for kind in [DrillEvent.Kind.down, .restored, .back] where timeline.events.contains(where: { $0.kind == kind }) {
            let meaning = switch kind {
            case .down: "down: taken out (service stopped or port cut off)"
            case .restored: "restored: started again"
            case .back: "back: answering through the proxy again"
            }
            entries.append((Self.markStyles[kind] ?? Self.serverStyles[0], meaning))
        }
        return "<ul class=\"legend\">" + entries.map { "<li>\(sample($0.0))\(XML.escape($0.1))</li>" }.joined() + "</ul>"
    }
}
