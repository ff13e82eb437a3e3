import Foundation

/// One SSH session to one host, used for all of that host's commands.
///
/// Every libssh2 call for the session runs on the session's own serial queue, never on the
/// Swift concurrency pool, so a host that blocks in poll() cannot starve the other hosts' tasks.
/// Calls on one client are serialised; use one client per host and many clients in parallel.
public final class SSHClient: Sendable {
    public let endpoint: SSHEndpoint
    /// The known_hosts lines that were ignored as unreadable ("known_hosts <path> line N: <why>;
    /// ignored"). The connection did not need them; a caller may still want to say so.
    public let knownHostsWarnings: [String]
    /// The host key `accept-new` recorded when connecting ("ssh-ed25519 SHA256:... in PATH").
    public let recordedHostKey: String?
    private let session: Session

    private init(session: Session, knownHostsWarnings: [String], recordedHostKey: String?) {
        self.endpoint = session.options.endpoint
        self.session = session
        self.knownHostsWarnings = knownHostsWarnings
        self.recordedHostKey = recordedHostKey
    }

    /// Connects, checks the host key against known_hosts, authenticates.
    public static func connect(_ options: SSHOptions) async throws(SSHError) -> SSHClient {
        let session = Session(options: options)
        let (warnings, recorded) = try await session.perform { session throws(SSHError) in
            try session.open()
            return (session.knownHostsWarnings, session.recordedHostKey)
        }
        return SSHClient(session: session, knownHostsWarnings: warnings, recordedHostKey: recorded)
    }

    /// Runs one command; `onLine` sees each output line as it arrives, on the session's queue.
    /// A command that fails on the host is a result with its status, not an error.
    public func run(
        _ command: RemoteCommand,
        onLine: (@Sendable (OutputLine) -> Void)? = nil
    ) async throws(SSHError) -> CommandResult {
        try await session.perform { session throws(SSHError) in try session.exec(command, onLine: onLine) }
    }

    /// Writes `data` to the absolute `path` atomically (a temporary file beside it, then a
    /// rename), so readers never see half a file, with `mode` set before the rename.
    public func upload(_ data: [UInt8], to path: String, mode: Int = 0o644, become: Become? = nil)
        async throws(SSHError)
    {
        let target = ShellQuoting.quote(path)
        let script = """
            set -e; t=$(mktemp "$(dirname -- \(target))/.labctl-upload.XXXXXX"); \
            trap 'rm -f "$t"' EXIT; cat > "$t"; chmod \(String(mode, radix: 8)) "$t"; \
            mv -f -- "$t" \(target); trap - EXIT
            """
        let command = RemoteCommand(arguments: ["sh", "-c", script], stdin: data, become: become)
        let result = try await session.perform { session throws(SSHError) in
            try session.exec(command, operation: .upload, onLine: nil)
        }
        guard result.succeeded else {
            throw SSHError(
                host: endpoint.description, operation: .upload,
                kind: .commandFailed(status: result.exitStatus, signal: result.exitSignal, stderr: result.stderrText))
        }
    }

    /// Says goodbye to the server and frees the session.
    public func close() async {
        _ = try? await session.perform { session throws(SSHError) in session.close() }
    }
}

extension Session {
    /// Runs `body` on the session's queue; cancelling the calling task interrupts the call at its
    /// next wait (the session is then reopened on its next use).
    func perform<T: Sendable>(_ body: @escaping @Sendable (Session) throws(SSHError) -> T) async throws(SSHError) -> T {
        if Task.isCancelled { throw error(.exec, .cancelled) }
        let result: Result<T, SSHError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async {
                    continuation.resume(returning: Result { () throws(SSHError) -> T in try body(self) })
                }
            }
        } onCancel: {
            self.cancelled.store(true, ordering: .relaxed)
        }
        return try result.get()
    }
}
