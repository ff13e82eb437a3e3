import Foundation
import LabEngine
import LabSpec
import SSH

/// What a command on a lab host printed and how it ended.
public struct HostCommandOutput: Sendable, Hashable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public var succeeded: Bool { status == 0 }
}

/// Runs shell commands on the lab's hosts (the nginx checks need it).
public protocol HostCommandRunner: Sendable {
    /// `privileged`: run as root (through sudo when the host logs in as another user and says
    /// `become`). A command that fails on the host is an output with its status, not an error;
    /// errors are for not reaching the host.
    func run(_ command: String, on host: InventoryHost, privileged: Bool, timeout: Duration) async throws -> HostCommandOutput
    /// Ends every connection; the runner is not used after.
    func close() async
}

/// Stops and starts an app server's service, for the failover drill. Production: systemd over
/// SSH (`SystemdServiceController`); tests point it at local processes.
public protocol ServiceController: Sendable {
    /// Returns once the service no longer runs.
    func stop(_ host: InventoryHost) async throws
    /// Returns once the service was started (it may need a moment before it answers).
    func start(_ host: InventoryHost) async throws
    /// What `stop` did, in words, for the report ("stopped wayshub on app1 (systemctl stop)").
    func stopDescription(_ host: InventoryHost) -> String
    func startDescription(_ host: InventoryHost) -> String
    /// What the user does to undo `stop` by hand when `start` failed, as a phrase with the
    /// labctl command; nil: nothing to say.
    func manualStart(_ host: InventoryHost, hints: LabctlHints) -> String?
}

/// A service that could not be stopped or started.
public struct ServiceControlError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var action: String
    public var unit: String
    public var detail: String

    public init(host: String, action: String, unit: String, detail: String) {
        self.host = host
        self.action = action
        self.unit = unit
        self.detail = detail
    }

    public var description: String { "\(host): could not \(action) \(unit): \(detail)" }
}

/// `systemctl stop|start <unit>` through a `HostCommandRunner` (`DrillStopMethod.service`).
public struct SystemdServiceController: ServiceController {
    public let runner: any HostCommandRunner
    /// The deploy playbook names the app's unit after the app (`wayshub.service`).
    public let unit: String
    public let timeout: Duration

    public init(runner: any HostCommandRunner, unit: String, timeout: Duration = .seconds(60)) {
        self.runner = runner
        self.unit = unit
        self.timeout = timeout
    }

    public func stop(_ host: InventoryHost) async throws { try await systemctl("stop", host) }
    public func start(_ host: InventoryHost) async throws { try await systemctl("start", host) }

    private func systemctl(_ action: String, _ host: InventoryHost) async throws {
        try await runner.runAsRoot(
            "systemctl \(action) -- \(ShellQuoting.quote(unit))", on: host, timeout: timeout,
            failure: ServiceControlError(host: host.name, action: action, unit: unit, detail: "systemctl exited with status"))
    }
}

extension HostCommandRunner {
    /// Runs `command` as root and throws `failure` with the command's own words (or its exit
    /// status) as the detail when it fails: the drill's stops and starts, which must not go on
    /// as if they had worked.
    func runAsRoot(_ command: String, on host: InventoryHost, timeout: Duration, failure: ServiceControlError) async throws {
        let output = try await run(command, on: host, privileged: true, timeout: timeout)
        guard output.succeeded else {
            let why = (output.stderr + output.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
            var error = failure
            error.detail = why.isEmpty ? "\(failure.detail) \(output.status)" : why
            throw error
        }
    }
}

/// One session per host (SSH's `HostSession`, the one way labctl runs a command on a host),
/// opened on first use and kept for the run, with the inventory's key, known_hosts file and
/// host key policy.
public actor SSHHostCommandRunner: HostCommandRunner {
    private let makeOptions: @Sendable (InventoryHost) -> SSHOptions
    private let become: @Sendable (InventoryHost) -> Become?
    private let connect: @Sendable (SSHOptions) async throws -> any HostSession
    private var clients: [String: Task<any HostSession, any Error>] = [:]

    /// - `options`: how to reach a host; by default from the inventory alone. The CLI passes
    ///   LabEngine's builder so that run-time secrets and overrides (a key's passphrase,
    ///   `--known-hosts`) apply here too.
    /// - `become`: how a privileged command runs on a host; by default passwordless sudo on
    ///   hosts that say `become`, nothing on the others.
    /// - `connect`: opens a session; SSH by default.
    public init(
        inventory: Inventory,
        options: (@Sendable (InventoryHost) -> SSHOptions)? = nil,
        become: (@Sendable (InventoryHost) -> Become?)? = nil,
        connect: (@Sendable (SSHOptions) async throws -> any HostSession)? = nil
    ) {
        self.makeOptions = options ?? { InventoryContext.sshOptions($0, inventory) }
        self.become = become ?? { $0.become ? .sudo : nil }
        self.connect = connect ?? { try await SSHClient.connect($0) }
    }

    public func run(_ command: String, on host: InventoryHost, privileged: Bool, timeout: Duration) async throws -> HostCommandOutput {
        let client = try await client(for: host)
        let remote = RemoteCommand(command, timeout: timeout, become: privileged ? become(host) : nil)
        let result = try await client.run(remote)
        let status: Int32 = result.exitSignal == nil ? result.exitStatus : 128 + 15
        return HostCommandOutput(status: status, stdout: result.stdoutText, stderr: result.stderrText)
    }

    public func close() async {
        let open = clients.values
        clients = [:]
        for task in open {
            if let client = try? await task.value { await client.close() }
        }
    }

    private func client(for host: InventoryHost) async throws -> any HostSession {
        if let existing = clients[host.name] {
            do {
                return try await existing.value
            } catch {
                // A failed connection is tried again on the next use (the drill's restart must
                // get its chance even if an earlier command could not connect).
                clients[host.name] = nil
                throw error
            }
        }
        let options = makeOptions(host)
        let connect = connect
        let task = Task { () async throws -> any HostSession in try await connect(options) }
        clients[host.name] = task
        do {
            return try await task.value
        } catch {
            clients[host.name] = nil
            throw error
        }
    }
}
