import Foundation
import TextLayout
import LabSpec

public enum StepStatus: String, Sendable, Codable, Hashable {
    case ok, changed, failed, skipped
}

public struct StepResult: Sendable, Codable, Hashable {
    public var name: String
    public var type: String
    public var status: StepStatus
    public var handler: Bool
    public var seconds: Double
    /// Why it failed or was skipped.
    public var message: String?
    /// What changed (or would, in check mode).
    public var summary: [String]
    public var diff: String?
    /// stdout of a command step (or of a failed step's commands).
    public var output: String?
    /// The step's commands were sent but how they ended is not known (the connection was lost,
    /// the wait for them gave up): reported as changed, since the change may have been made,
    /// and a report that said "not made" could hide a change from whoever reads it.
    public var uncertain: Bool

    public init(
        name: String, type: String, status: StepStatus, handler: Bool = false, seconds: Double = 0, message: String? = nil,
        summary: [String] = [], diff: String? = nil, output: String? = nil, uncertain: Bool = false
    ) {
        self.name = name
        self.type = type
        self.status = status
        self.handler = handler
        self.seconds = seconds
        self.message = message
        self.summary = summary
        self.diff = diff
        self.output = output
        self.uncertain = uncertain
    }
}

public enum HostStatus: String, Sendable, Codable, Hashable {
    /// Every step ran (ok, changed or skipped).
    case ok
    /// A step failed; the host's later steps did not run.
    case failed
    /// No SSH session could be opened.
    case unreachable
    /// The run was interrupted (Ctrl-C) before the host finished.
    case cancelled
    /// A rolling group stopped (a batch before this host's failed) before this host's turn:
    /// nothing of the group, or after it, ran here.
    case notStarted = "not started"
}

public struct HostReport: Sendable, Codable, Hashable {
    public var host: String
    public var status: HostStatus
    /// Why the host is unreachable, or which step failed and why.
    public var error: String?
    public var steps: [StepResult]
    public var connectSeconds: Double
    /// Commands sent over the session (probes and applies): 1 on a host with nothing to do.
    public var roundTrips: Int
    /// Time spent in commands that only looked (the shared probe of all steps; a step's own
    /// `seconds` is its planning and applying).
    public var probeSeconds: Double
    public var seconds: Double
    /// Handlers notified by a change whose record is still on the host (the run stopped before
    /// they ran, or they failed): the next run of the playbook runs them.
    public var pendingHandlers: [String]
    /// This host's time in each rolling group it ran (its turn, or at once when it had no turn
    /// to wait for): what shows that servers were updated one after another.
    public var turns: [RollingTurn]
    /// The load balancers this host was taken out of and not put back into (its update
    /// failed or was interrupted): the next run that succeeds on it puts it back.
    public var outOfRotation: [String]
    /// The host could not be reached because of a file of this machine (a key or known_hosts
    /// labctl cannot read): bad input, exit 4, not the host's fault.
    public var localFileProblem: Bool

    public init(
        host: String, status: HostStatus, error: String? = nil, steps: [StepResult] = [], connectSeconds: Double = 0,
        roundTrips: Int = 0, probeSeconds: Double = 0, seconds: Double = 0, pendingHandlers: [String] = [],
        turns: [RollingTurn] = [], outOfRotation: [String] = [], localFileProblem: Bool = false
    ) {
        self.localFileProblem = localFileProblem
        self.turns = turns
        self.outOfRotation = outOfRotation
        self.host = host
        self.status = status
        self.error = error
        self.steps = steps
        self.connectSeconds = connectSeconds
        self.roundTrips = roundTrips
        self.probeSeconds = probeSeconds
        self.seconds = seconds
        self.pendingHandlers = pendingHandlers
    }

    public func count(_ status: StepStatus) -> Int { steps.filter { $0.status == status }.count }
}

/// One host's run through a rolling group.
public struct RollingTurn: Sendable, Codable, Hashable {
    public var group: String
    /// False when the host went at once (nothing to change, or not serving yet).
    public var inTurn: Bool
    /// Whether it was taken out of rotation for its update.
    public var takenOut: Bool
    public var startedAt: Date
    public var endedAt: Date
    /// The same moments in seconds since the run began, to the millisecond (the dates above
    /// are whole seconds in JSON).
    public var startSecond: Double
    public var endSecond: Double

    public init(group: String, inTurn: Bool, takenOut: Bool, startedAt: Date, endedAt: Date, startSecond: Double, endSecond: Double) {
        self.group = group
        self.inTurn = inTurn
        self.takenOut = takenOut
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.startSecond = startSecond
        self.endSecond = endSecond
    }
}

/// A whole run as data (`--json`).
public struct RunReport: Sendable, Codable, Hashable {
    /// The version of this JSON's layout (`ReportJSON.schemaVersion`); a change that breaks a reader raises it.
    public var schemaVersion: Int = ReportJSON.schemaVersion
    public var playbook: String
    public var check: Bool
    public var startedAt: Date
    public var seconds: Double
    public var hosts: [HostReport]
    /// The run was stopped (Ctrl-C, a cancelled task) before every host finished.
    public var interrupted: Bool

    public init(playbook: String, check: Bool, startedAt: Date, seconds: Double, hosts: [HostReport], interrupted: Bool = false) {
        self.playbook = playbook
        self.check = check
        self.startedAt = startedAt
        self.seconds = seconds
        self.hosts = hosts
        self.interrupted = interrupted
    }

    public var exitCode: RunExitCode {
        if hosts.contains(where: { $0.status == .failed || $0.status == .cancelled }) { return .hostFailed }
        if hosts.contains(where: \.localFileProblem) { return .badInput }
        if hosts.contains(where: { $0.status == .unreachable }) { return .unreachable }
        return .ok
    }

    public var changedCount: Int { hosts.reduce(0) { $0 + $1.count(.changed) } }

    public func json() throws -> Data {
        try ReportJSON.encode(self)
    }
}

/// labctl's exit codes for runs.
/// - 0: every host ran every step (ok, changed or skipped);
/// - 2: a step failed on at least one host (or the run was interrupted);
/// - 3: at least one host was unreachable and none failed;
/// - 4: bad input (playbook or inventory problems), nothing was run.
public enum RunExitCode: Int32, Sendable, Codable {
    case ok = 0
    case hostFailed = 2
    case unreachable = 3
    case badInput = 4
}

/// The recap at the end of a run, as plain text (the CLI colours it).
public enum Recap {
    public static func render(_ report: RunReport, slowest: Int = 5) -> String {
        var rows = [["host", "ok", "changed", "failed", "skipped", "status"]]
        for host in report.hosts {
            rows.append([
                host.host, "\(host.count(.ok))", "\(host.count(.changed))", "\(host.count(.failed))", "\(host.count(.skipped))",
                // One line per host, whatever the error said.
                host.status == .ok ? "ok" : host.status.rawValue + (host.error.map { ": " + $0.split(separator: "\n").joined(separator: " | ") } ?? ""),
            ])
        }
        var text = report.check ? "RECAP (check mode: nothing was changed)" : "RECAP"
        text += report.interrupted ? " (interrupted before every host finished)\n" : "\n"
        for line in TextTable(rows, alignments: [.left, .right, .right, .right, .right]).lines() {
            text += line + "\n"
        }
        // What a reader must not miss after a cut run: changes that may be on the host, and
        // the reloads and restarts still owed to them.
        for host in report.hosts {
            for step in host.steps where step.uncertain {
                text += "\(host.host): \(step.name) may have changed: its commands were sent, how they ended is unknown\n"
            }
            if !host.pendingHandlers.isEmpty {
                text += "\(host.host): handlers pending until the next run: \(host.pendingHandlers.joined(separator: ", "))\n"
            }
        }
        let timed = report.hosts.flatMap { host in host.steps.map { (host.host, $0) } }
            // Steps that took no time to speak of (a no-op run's) are not worth a line.
            .filter { $0.1.status != .skipped && $0.1.seconds >= 0.05 }
            .sorted { $0.1.seconds > $1.1.seconds }
            .prefix(slowest)
        if !timed.isEmpty {
            text += "slowest steps:\n"
            for (host, step) in timed {
                text += "  " + String(format: "%7.2f s", step.seconds) + "  \(host): \(step.name)\n"
            }
        }
        text += String(format: "%d hosts in %.2f s", report.hosts.count, report.seconds) + "\n"
        return text
    }
}
