/// labctl's one way to run a command on a host: an open session. `SSHClient` is the real one;
/// the playbook runner, verify's nginx checks and the local lab all run through it, and tests
/// may put a local shell in its place.
public protocol HostSession: Sendable {
    func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult
    func close() async
    /// The host key recorded in known_hosts when this session connected (accept-new), if any.
    var recordedHostKey: String? { get }
}

extension HostSession {
    public var recordedHostKey: String? { nil }

    public func run(_ command: RemoteCommand) async throws(SSHError) -> CommandResult {
        try await run(command, onLine: nil)
    }
}

extension SSHClient: HostSession {}
