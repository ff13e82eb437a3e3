import Foundation

/// What went wrong, with the host and the operation it went wrong in.
public struct SSHError: Error, Sendable, CustomStringConvertible {
    public enum Operation: String, Sendable {
        case connect = "connecting"
        case handshake = "the SSH handshake"
        case hostKey = "checking the host key"
        case authenticate = "authenticating"
        case exec = "running a command"
        case upload = "uploading"
    }

    public enum Kind: Error, Sendable {
        case nameNotResolved(String)
        case connectionRefused
        case unreachable(String)
        case timeout(Duration)
        /// Every credential was refused; each reason names the credential tried.
        case authenticationFailed(reasons: [String])
        /// The key is RSA and the server wants rsa-sha2, which libssh2 1.10 cannot produce.
        case rsaKeyUnsupported(keyPath: String)
        /// `warnings` name the known_hosts lines that were ignored as unreadable: often the reason.
        case hostKeyUnknown(keyType: String, fingerprint: String, knownHostsPath: String, warnings: [String])
        /// known_hosts lists another key for the host (`expectedKeyType` may differ from `keyType`:
        /// OpenSSH calls that a changed key too).
        case hostKeyMismatch(
            keyType: String, presented: String, expectedKeyType: String, expected: String, knownHostsPath: String,
            line: Int, warnings: [String])
        case hostKeyRevoked(fingerprint: String, knownHostsPath: String, line: Int, warnings: [String])
        /// The command ran and failed (used by helpers that require success, e.g. upload).
        case commandFailed(status: Int32, signal: String?, stderr: String)
        case outputTooLarge(limit: Int)
        /// sudo asked again after the password given for `become`: it is wrong for `user` (the
        /// login user). It was offered once, so no line of the command's input was taken for it.
        case becomePasswordRefused(user: String)
        /// Before the command started, something asked `prompt`, which is not sudo's password
        /// prompt (a second factor, a PAM module's own); labctl answers only sudo's.
        case becomePromptUnrecognised(prompt: String)
        case sessionClosed
        case cancelled
        case protocolError(code: Int32, message: String)
        case localFile(path: String, reason: String)
    }

    public var host: String
    public var operation: Operation
    public var kind: Kind

    public init(host: String, operation: Operation, kind: Kind) {
        self.host = host
        self.operation = operation
        self.kind = kind
    }

    /// The session was up and then went away under a command: the host counts as unreachable
    /// from then on, whatever the command had done (libssh2's socket receive, send and
    /// disconnect errors; a connection ended by the keepalives is a receive error).
    public var connectionLost: Bool {
        guard operation == .exec || operation == .upload else { return false }
        switch kind {
        case .sessionClosed: return true
        case .protocolError(let code, _): return [-43, -7, -13].contains(code)
        default: return false
        }
    }

    /// labctl's one rule for "the host was unreachable" (exit 3): the connection, the host key or
    /// the login failed, or the connection was lost under a command. Anything after a login that
    /// worked is the host failing a command, not being unreachable.
    public var isUnreachable: Bool {
        [.connect, .handshake, .hostKey, .authenticate].contains(operation) || connectionLost
    }

    /// One sentence for the user.
    public var description: String {
        switch kind {
        case .becomePasswordRefused(let user):
            return "sudo on \(host) refused the password for \(user): \(Self.becomePasswordHint)"
        default:
            return "\(host): \(summary)"
        }
    }

    static let becomePasswordHint = "check -K / LABCTL_BECOME_PASSWORD"

    /// The sentence without the host, for tables that already show it.
    public var summary: String {
        switch kind {
        case .nameNotResolved(let detail):
            return "the host name could not be resolved (\(detail)); check the address in the inventory"
        case .connectionRefused:
            return "connection refused; is sshd running and listening on that port?"
        case .unreachable(let detail):
            return "could not connect (\(detail))"
        case .timeout(let limit):
            return "timed out after \(limit.labctlSeconds) while \(operation.rawValue)"
        case .authenticationFailed(let reasons):
            let why = reasons.isEmpty ? "no credential was given" : reasons.joined(separator: "; ")
            return "authentication failed (\(why)); check the user and key in the inventory, "
                + "or install the key with `labctl keys install -k` (it logs in once with the password)"
        case .rsaKeyUnsupported(let path):
            return "the key \(path) is an RSA key, and libssh2 1.10 cannot sign with rsa-sha2, "
                + "which current OpenSSH servers require; use an ed25519 key instead: set the inventory's "
                + "key to a file that does not exist yet (such as ~/.ssh/id_ed25519) and run "
                + "`labctl keys install -k`, which makes it and installs it on the hosts"
        case .hostKeyUnknown(let type, let fingerprint, let path, let warnings):
            return "the host key (\(type) \(fingerprint)) is not in \(path); check the fingerprint on the "
                + "host (ssh-keygen -lf /etc/ssh/ssh_host_\(type.hostKeyFileStem)_key.pub) and run again "
                + "with --host-key-checking accept-new to record it" + warnings.knownHostsNote
        case .hostKeyMismatch(let type, let presented, let expectedType, let expected, let path, let line, let warnings):
            let listed = expectedType == type
                ? expected
                : "\(expectedType) \(expected) (the host offers no \(expectedType) key, which OpenSSH refuses as a change too)"
            return "REFUSED: the host key changed: the host presents \(type) \(presented) but \(path) "
                + "line \(line) lists \(listed); if the host was really reinstalled, remove that line "
                + "(ssh-keygen -R \(host.sshHostPart) -f \(path)) and connect again" + warnings.knownHostsNote
        case .hostKeyRevoked(let fingerprint, let path, let line, let warnings):
            return "REFUSED: the host key \(fingerprint) is marked @revoked in \(path) line \(line)" + warnings.knownHostsNote
        case .commandFailed(let status, let signal, let stderr):
            let how = signal.map { "was killed by SIG\($0)" } ?? "exited with status \(status)"
            let tail = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return tail.isEmpty ? "the command \(how)" : "the command \(how): \(tail.lastLines(3))"
        case .outputTooLarge(let limit):
            return "the command printed more than \(limit) bytes, the limit; it was stopped"
        case .becomePasswordRefused(let user):
            return "sudo refused the password for \(user): \(Self.becomePasswordHint)"
        case .becomePromptUnrecognised(let prompt):
            return "sudo asked \"\(prompt)\", which is not its password prompt, and labctl answers only that one; "
                + "run sudo by hand there to see what it wants, or allow the user NOPASSWD sudo"
        case .sessionClosed:
            return "the SSH session is closed"
        case .cancelled:
            return "cancelled while \(operation.rawValue)"
        case _ where connectionLost:
            return "the connection was lost while \(operation.rawValue) (the host went down or rebooted, its sshd stopped, or the network between failed)"
        case .protocolError(-2, _), .protocolError(-13, _):
            return "the server closed the connection before SSH began (is sshd running, and is this an SSH port?)"
        case .protocolError(let code, let message):
            return "\(operation.rawValue) failed: \(message) (libssh2 error \(code))"
        case .localFile(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

extension Duration {
    var labctlSeconds: String {
        let value = seconds
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}

extension [String] {
    /// The known_hosts lines that were ignored, for an error about the host key.
    fileprivate var knownHostsNote: String {
        guard !isEmpty else { return "" }
        let shown = prefix(5).joined(separator: "; ")
        return "; note: " + shown + (count > 5 ? "; and \(count - 5) more ignored lines" : "")
    }
}

extension String {
    fileprivate var hostKeyFileStem: String {
        switch self {
        case "ssh-ed25519": return "ed25519"
        case let t where t.hasPrefix("ecdsa"): return "ecdsa"
        case "ssh-rsa": return "rsa"
        default: return "*"
        }
    }

    /// "user@host:2222" → "[host]:2222", "user@host" → "host", as ssh-keygen -R wants it.
    fileprivate var sshHostPart: String {
        let afterUser = split(separator: "@", maxSplits: 1).last.map(String.init) ?? self
        if let colon = afterUser.lastIndex(of: ":"), !afterUser.hasPrefix("[") {
            let name = afterUser[..<colon]
            let port = afterUser[afterUser.index(after: colon)...]
            return "'[\(name)]:\(port)'"
        }
        return afterUser
    }

    func lastLines(_ count: Int) -> String {
        split(separator: "\n").suffix(count).joined(separator: " | ")
    }
}
