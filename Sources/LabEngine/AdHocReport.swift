import Foundation
import LabSpec
import SSH

/// `labctl ping --json` as data: one entry per host, in the inventory's order.
public struct PingReport: Sendable, Codable, Hashable {
    public var schemaVersion: Int = ReportJSON.schemaVersion
    public var hosts: [Host]

    public struct Host: Sendable, Codable, Hashable {
        public var host: String
        public var address: String
        /// "ok", "failed" (it answered but a check failed) or "unreachable".
        public var status: String
        /// `uname -sr`
        public var system: String?
        public var loginUser: String?
        /// nil when the host does not use become; else whether `sudo -n true` worked.
        public var sudoWorks: Bool?
        public var connectSeconds: Double?
        public var commandSeconds: Double?
        /// Why it failed, in one sentence.
        public var error: String?
        /// The host key recorded on this first contact (accept-new).
        public var recordedHostKey: String?
    }

    public init(_ results: [AdHoc.PingResult]) {
        hosts = results.map { ping in
            Host(
                host: ping.host, address: ping.address,
                status: ping.error?.isUnreachable == true ? "unreachable" : ping.succeeded ? "ok" : "failed",
                system: ping.system, loginUser: ping.loginUser, sudoWorks: ping.sudoWorks,
                connectSeconds: ping.connectTime.map(\.seconds), commandSeconds: ping.commandTime.map(\.seconds),
                error: ping.error?.summary ?? (ping.sudoWorks == false ? "sudo refused: passwordless sudo is not set up" : nil),
                recordedHostKey: ping.recordedHostKey)
        }
    }
}

/// `labctl exec --json` as data: the command and, per host, how it ended and what it printed.
public struct ExecReport: Sendable, Codable, Hashable {
    public var schemaVersion: Int = ReportJSON.schemaVersion
    /// The command line as the remote shell runs it (before sudo and timeout wrap it).
    public var command: String
    public var become: Bool
    public var hosts: [Host]

    public struct Host: Sendable, Codable, Hashable {
        public var host: String
        /// "ok", "failed" (ran and failed) or "unreachable".
        public var status: String
        public var exitStatus: Int32?
        /// The signal that ended the command ("TERM", "KILL").
        public var exitSignal: String?
        public var seconds: Double?
        public var stdout: String?
        public var stderr: String?
        /// Why it could not run, in one sentence.
        public var error: String?
    }

    public init(command: String, become: Bool, results: [AdHoc.ExecResult]) {
        self.command = command
        self.become = become
        hosts = results.map { outcome in
            Host(
                host: outcome.host,
                status: outcome.error?.isUnreachable == true ? "unreachable" : outcome.succeeded ? "ok" : "failed",
                exitStatus: outcome.result?.exitStatus, exitSignal: outcome.result?.exitSignal,
                seconds: outcome.result?.duration.seconds, stdout: outcome.result?.stdoutText, stderr: outcome.result?.stderrText,
                error: outcome.error?.summary)
        }
    }
}
