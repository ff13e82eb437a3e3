import LabEngine

/// What verify is doing now, for the status line a terminal shows under its progress: the
/// check that runs, and a countdown while it waits a known time (fail_timeout, which leaves
/// the screen silent for seconds otherwise). Plain text, tested as data, like the playbook's
/// `RunningSteps`.
public struct VerifyStatus: Sendable {
    private var check: (name: String, since: ContinuousClock.Instant)?
    private var note: String?
    private var wait: (label: String, until: ContinuousClock.Instant)?

    public init() {}

    /// Takes one event in; true when the line changed.
    @discardableResult
    public mutating func record(_ event: VerifyEvent, at now: ContinuousClock.Instant) -> Bool {
        switch event {
        case .started(_, let name):
            check = (name, now)
            note = nil
            wait = nil
        case .note(let text):
            note = text
            wait = nil
        case .waiting(let label, let seconds):
            wait = (label, now + .milliseconds(Int64((seconds * 1000).rounded())))
        case .finished(let result):
            guard result.name == check?.name else { return false }
            check = nil
            note = nil
            wait = nil
        }
        return true
    }

    /// One line at most `width` characters: a spinner frame, the check and how long it has
    /// run, then the wait's seconds left or the step inside the check. Nil when nothing runs.
    public func line(now: ContinuousClock.Instant, width: Int, frame: Int) -> String? {
        var parts: [String] = []
        if let check { parts.append("\(check.name) \(Int((now - check.since).components.seconds))s") }
        if let wait, wait.until > now {
            let left = (wait.until - now).components
            let seconds = left.seconds + (left.attoseconds > 0 ? 1 : 0)
            parts.append("\(wait.label): \(seconds) s left")
        } else if let note {
            parts.append(note)
        }
        guard !parts.isEmpty else { return nil }
        let text = RunningSteps.spinner[frame % RunningSteps.spinner.count] + " " + parts.joined(separator: " · ")
        guard text.count > width else { return text }
        return String(text.prefix(max(1, width - 1))) + "…"
    }
}
