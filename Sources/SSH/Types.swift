import Foundation

/// Where to connect and as whom.
public struct SSHEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String

    public init(host: String, port: Int = 22, user: String) {
        self.host = host
        self.port = port
        self.user = user
    }

    public var description: String { port == 22 ? "\(user)@\(host)" : "\(user)@\(host):\(port)" }
}

/// One way to prove who we are. They are tried in the order given.
public enum SSHCredential: Sendable {
    /// An OpenSSH or PEM private key file (ed25519 or ecdsa; libssh2 1.10 cannot sign with rsa-sha2).
    case keyFile(path: String, passphrase: String?)
    /// The identities of a running ssh-agent; nil means `SSH_AUTH_SOCK`.
    case agent(socketPath: String?)
    /// A password: meant only for installing a key the first time.
    case password(String)
}

/// What to do with a host key that known_hosts does not list. A key that differs from the
/// listed one, or a revoked key, is refused whatever the policy.
public enum HostKeyPolicy: String, Sendable, Hashable, CaseIterable {
    /// Only hosts already in known_hosts with the same key are accepted.
    case strict
    /// An unknown host's key is added to known_hosts; a changed key is still refused.
    case acceptNew = "accept-new"
}

public struct SSHOptions: Sendable {
    public var endpoint: SSHEndpoint
    public var credentials: [SSHCredential]
    public var knownHostsPath: String
    public var hostKeyPolicy: HostKeyPolicy
    public var connectTimeout: Duration
    /// How long the SSH handshake and authentication may take after the TCP connection is made.
    public var handshakeTimeout: Duration
    /// Keepalives are sent this often (libssh2 sends none by itself); nil disables them.
    public var keepaliveInterval: Duration?
    /// Jump hosts (OpenSSH's ProxyJump), the first contacted directly and each next one through
    /// the one before; the last carries the connection to `endpoint`. Each is checked against
    /// its own known_hosts and authenticated with its own credentials.
    public var jumps: [SSHOptions] = []
    /// Debugging a connection (labctl -vvv): told how the connection is made before it is, and
    /// each command line as it is sent. Nil: nothing is told.
    public var trace: SSHTrace?

    public init(
        endpoint: SSHEndpoint,
        credentials: [SSHCredential],
        knownHostsPath: String = SSHOptions.defaultKnownHostsPath,
        hostKeyPolicy: HostKeyPolicy = .strict,
        connectTimeout: Duration = .seconds(10),
        handshakeTimeout: Duration = .seconds(15),
        keepaliveInterval: Duration? = .seconds(15)
    ) {
        self.endpoint = endpoint
        self.credentials = credentials
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.keepaliveInterval = keepaliveInterval
    }

    public static var defaultKnownHostsPath: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + "/.ssh/known_hosts"
    }
}

/// What a session tells while it works, for a user debugging a connection. Command lines carry
/// no secret: a sudo password travels only as the answer to sudo's prompt, and passwords and
/// passphrases never appear in a command.
public struct SSHTrace: Sendable {
    /// Who is speaking (the inventory's host name).
    public var label: String
    /// Said before every connection attempt: address, port, user, key files, known_hosts...
    public var connecting: String
    public var emit: @Sendable (String) -> Void

    public init(label: String, connecting: String, emit: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.connecting = connecting
        self.emit = emit
    }
}

/// Running a command as root for a non-root login.
public enum Become: Sendable, Hashable {
    /// `sudo -n`: passwordless sudo, fails at once if sudo would ask
    /// (`CommandResult.sudoNeedsPassword`).
    case sudo
    /// `sudo -S`: the password is written only when sudo asks for it, once, and never reaches
    /// the command's stdin, argv or any message; a wrong one is `SSHError.Kind.becomePasswordRefused`.
    case sudoWithPassword(String)
}

// Printing a command or a become (logs, -vv, test failures) must not print the password.
extension Become: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        switch self {
        case .sudo: return "sudo"
        case .sudoWithPassword: return "sudo with a password"
        }
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

public struct RemoteCommand: Sendable {
    /// A shell command line, run by the login user's shell (or by `sh -c` under sudo).
    public var command: String
    public var stdin: [UInt8]
    /// Exported before the command runs (sshd refuses most `setenv` requests, so they travel
    /// in the command line, quoted).
    public var environment: [String: String]
    /// Enforced on the host too (`timeout`), since libssh2 1.10 cannot kill a remote process.
    public var timeout: Duration?
    public var become: Become?
    /// The most bytes of stdout plus stderr kept; more fails the command with `.outputTooLarge`.
    public var outputLimit: Int
    /// `command` is one program with its arguments, quoted: sudo and timeout can run it as it
    /// is, without a `sh -c` between them and it (one process fewer on the host).
    public private(set) var isProgram = false

    public init(
        _ command: String,
        stdin: [UInt8] = [],
        environment: [String: String] = [:],
        timeout: Duration? = nil,
        become: Become? = nil,
        outputLimit: Int = 256 << 20
    ) {
        self.command = command
        self.stdin = stdin
        self.environment = environment
        self.timeout = timeout
        self.become = become
        self.outputLimit = outputLimit
    }

    /// A program and its arguments (each quoted here), rather than a shell command line.
    public init(
        arguments: [String],
        stdin: [UInt8] = [],
        timeout: Duration? = nil,
        become: Become? = nil,
        outputLimit: Int = 256 << 20
    ) {
        self.init(
            arguments.map(ShellQuoting.quote).joined(separator: " "), stdin: stdin, timeout: timeout, become: become,
            outputLimit: outputLimit)
        isProgram = true
    }
}

public enum OutputStream: Sendable, Hashable {
    case stdout
    case stderr
}

/// One line of a command's output as it arrives (without its newline).
public struct OutputLine: Sendable, Hashable {
    public var stream: OutputStream
    public var text: String
    public init(stream: OutputStream, text: String) {
        self.stream = stream
        self.text = text
    }
}

public struct CommandResult: Sendable {
    public var stdout: Data
    public var stderr: Data
    public var exitStatus: Int32
    /// The signal that ended the process ("TERM", "KILL"...); libssh2 reports status 0 then.
    public var exitSignal: String?
    public var duration: Duration

    public init(stdout: Data, stderr: Data, exitStatus: Int32, exitSignal: String?, duration: Duration) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.duration = duration
    }

    public var succeeded: Bool { exitStatus == 0 && exitSignal == nil }
    /// `sudo -n` (`Become.sudo`) did not run the command because sudo wants a password: the
    /// caller can suggest giving one (-K). Recognised by sudo's message, which is English
    /// unless the host's locale translates it.
    public var sudoNeedsPassword: Bool {
        exitStatus == 1 && exitSignal == nil && stderrText.contains("sudo: a password is required")
    }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}
