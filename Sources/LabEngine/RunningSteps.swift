/// Which step each host is in the middle of, for the live status line a terminal shows under
/// the progress lines: long steps (a package install, npm) would otherwise leave the screen
/// silent for minutes. Fed by the runner's events; the line is plain text (no colour, no
/// cursor codes), so it is tested as data.
public struct RunningSteps: Sendable {
    struct Running: Sendable {
        var step: String
        var since: ContinuousClock.Instant
    }

    private var running: [String: Running] = [:]

    public init() {}

    public var isEmpty: Bool { running.isEmpty }

    /// Takes one runner event in; true when it changed which host is in which step (most
    /// events, such as output lines, do not, and need no redraw).
    @discardableResult
    public mutating func record(_ event: RunEvent, at now: ContinuousClock.Instant) -> Bool {
        switch event {
        case .stepStarted(let host, let step, let handler):
            running[host] = Running(step: (handler ? "handler: " : "") + step, since: now)
            return true
        case .stepFinished(let host, _), .unreachable(let host, _):
            return running.removeValue(forKey: host) != nil
        case .hostFinished(let report):
            return running.removeValue(forKey: report.host) != nil
        case .connecting, .connected, .hostKeyRecorded, .output:
            return false
        }
    }

    public static let spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

    /// One line at most `width` characters wide: a spinner frame, then each busy host with its
    /// step and how long it has run, longest-running first. Nil until some step has run for
    /// `after`: a quick run never draws one.
    public func line(now: ContinuousClock.Instant, width: Int, frame: Int, after: Duration = .seconds(1)) -> String? {
        let busy = running.sorted { ($0.value.since, $0.key) < ($1.value.since, $1.key) }
        guard let oldest = busy.first, now - oldest.value.since >= after else { return nil }
        let parts = busy.map { host, entry in
            "\(host): \(entry.step) \(Int((now - entry.since).components.seconds))s"
        }
        let text = Self.spinner[frame % Self.spinner.count] + " " + parts.joined(separator: " · ")
        guard text.count > width else { return text }
        return String(text.prefix(max(1, width - 1))) + "…"
    }
}
