import Foundation

/// The last lines of what a lab host logged: its systemd journal when labctl can read it on
/// this machine, else its console (boot messages), with the reason.
public struct HostLog: Sendable, Codable, Hashable {
    public enum Source: String, Sendable, Codable, Hashable {
        case journal, console
    }

    public var host: String
    public var source: Source
    /// The journal folder or the console log file that was read.
    public var path: String
    public var lines: [String]
    /// Why the console is shown instead of the journal; nil when the journal was read.
    public var note: String?

    public init(host: String, source: Source, path: String, lines: [String], note: String? = nil) {
        self.host = host
        self.source = source
        self.path = path
        self.lines = lines
        self.note = note
    }
}

/// `labctl lab status --json` as data.
public struct LabStatusReport: Sendable, Codable, Hashable {
    public var schemaVersion: Int = 1
    public var lab: String
    public var hosts: [Host]
    /// `--log HOST`: that host's last log lines.
    public var log: HostLog?

    public struct Host: Sendable, Codable, Hashable {
        public var name: String
        /// "running" or "stopped".
        public var state: String
        public var address: String
        public var user: String
        public var pid: Int32?
        public var memoryBytes: UInt64?
        public var uptimeSeconds: Double?
    }

    public init(lab: String, hosts: [LabHostStatus], log: HostLog? = nil) {
        self.lab = lab
        self.hosts = hosts.map { host in
            Host(
                name: host.name, state: host.running ? "running" : "stopped", address: host.address, user: host.user,
                pid: host.pid, memoryBytes: host.memoryBytes,
                uptimeSeconds: host.uptime.map(\.seconds))
        }
        self.log = log
    }
}

extension LocalLab {
    /// The host's journal's last lines (systemd in the container keeps it in its own
    /// filesystem, as nspawn runs with --link-journal=no), read with this machine's journalctl;
    /// the console log when there is no journal labctl can read, saying why.
    public func hostLog(host: String, lastLines: Int = 30) async throws(LabError) -> HostLog {
        guard let entry = definition.hosts.first(where: { $0.name == host }) else {
            throw .unknownHost(host, known: definition.hosts.map(\.name))
        }
        let state = HostState(
            lab: definition.name, host: entry.name, address: entry.address, user: entry.user,
            stateDirectory: definition.stateDirectory)
        let console = LocalLab.readableLog(state.consoleLog, lastLines: lastLines).split(separator: "\n").map(String.init)
        func fallback(_ why: String) -> HostLog {
            HostLog(host: host, source: .console, path: state.consoleLog, lines: console, note: why + "; showing the console log (boot messages) instead")
        }
        let machineID = [state.merged, state.upper].lazy.compactMap { root in
            (try? String(contentsOfFile: root + "/etc/machine-id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }.first { !$0.isEmpty }
        guard let machineID else {
            return fallback("\(host) has no machine-id yet (it was never booted, or the lab was taken down)")
        }
        let leader = Machine.readPID(state.nspawnPIDFile).flatMap { isNspawn($0, of: state) ? $0 : nil }.flatMap(Self.firstChild)
        let candidates = Self.journalDirectories(merged: state.merged, upper: state.upper, machineID: machineID, leader: leader)
        guard let directory = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            return fallback("no journal of \(host) in \(candidates.joined(separator: " or "))")
        }
        let output = try await Command.capture(
            "journalctl", ["--directory=\(directory)", "--lines=\(lastLines)", "--no-pager", "--no-hostname", "--output=short-iso"])
        let lines = output.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("-- ") }
        guard output.succeeded, !lines.isEmpty else {
            let why = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init)
            return fallback("journalctl could not read \(directory)" + (why.map { " (\($0))" } ?? "") + (geteuid() == 0 ? "" : "; try again with sudo"))
        }
        return HostLog(host: host, source: .journal, path: directory, lines: lines)
    }

    /// Where a lab host's journal can be, in the order looked at: the persistent journal in
    /// its overlay (the merged view while mounted, the upper dir where its changes are kept),
    /// then the volatile one under /run, which only the running container's root shows.
    static func journalDirectories(merged: String, upper: String, machineID: String, leader: Int32?) -> [String] {
        var directories = [merged, upper].map { "\($0)/var/log/journal/\(machineID)" }
        if let leader { directories.append("/proc/\(leader)/root/run/log/journal/\(machineID)") }
        return directories
    }

    /// The container's init: the first child of its systemd-nspawn process.
    static func firstChild(of pid: Int32) -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
