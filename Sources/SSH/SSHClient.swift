import Foundation

/// One SSH session to one host, used for all of that host's commands.
///
/// Every libssh2 call for the session runs on the session's own serial queue, never on the
/// Swift concurrency pool, so blocking in poll() cannot starve other hosts' tasks.
public final class SSHClient: Sendable {
    public let endpoint: SSHEndpoint

    init(endpoint: SSHEndpoint) {
        self.endpoint = endpoint
    }

    /// Connects, checks the host key against known_hosts, authenticates.
    public static func connect(_ options: SSHOptions) async throws(SSHError) -> SSHClient {
        fatalError("not yet implemented")
    }

    /// Runs one command; `onLine` sees each output line as it arrives.
    public func run(
        _ command: RemoteCommand,
        onLine: (@Sendable (OutputLine) -> Void)? = nil
    ) async throws(SSHError) -> CommandResult {
        fatalError("not yet implemented")
    }

    /// Writes `data` to `path` atomically (a temporary file beside it, then rename) with `mode`.
    public func upload(_ data: [UInt8], to path: String, mode: Int = 0o644, become: Become? = nil)
        async throws(SSHError)
    {
        fatalError("not yet implemented")
    }

    public func close() async {}
}
