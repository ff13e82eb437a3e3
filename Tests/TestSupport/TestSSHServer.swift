import Foundation
import SSH
import Synchronization

/// A private OpenSSH sshd on 127.0.0.1 for tests: its own port, host key, authorized_keys and
/// config in a temporary directory. Any local user may log in with `clientKey`.
public final class TestSSHServer: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    public let clientKeyPath: String
    public let knownHostsPath: String
    /// The known_hosts line of the first host key ("[127.0.0.1]:port ssh-ed25519 AAAA...").
    public let hostPublicKeyLine: String
    /// The known_hosts line of each host key, by key type as ssh-keygen -t names it ("ecdsa").
    public let hostPublicKeyLines: [String: String]
    private let pid: pid_t
    private let stopped = NSLock()
    nonisolated(unsafe) private var isStopped = false

    /// - Parameter extraConfig: sshd_config lines, read before the defaults (e.g. "PasswordAuthentication yes").
    /// - Parameter hostKeyTypes: the host keys the server has, as ssh-keygen -t names them
    ///   ("ed25519", "ecdsa"); the first one is `hostPublicKeyLine`.
    public init(extraConfig: String = "", extraAuthorizedKeys: [String] = [], hostKeyTypes: [String] = ["ed25519"]) throws {
        let directory = try TemporaryDirectory(prefix: "labctl-sshd")
        self.directory = directory
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let hostKeys = hostKeyTypes.map { directory.file("ssh_host_\($0)_key") }
        for (type, hostKey) in zip(hostKeyTypes, hostKeys) {
            try runLocal(["ssh-keygen", "-q", "-t", type, "-N", "", "-f", hostKey])
        }
        clientKeyPath = directory.file("id_ed25519")
        try runLocal(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labctl-test", "-f", clientKeyPath])
        let clientPublic = try String(contentsOfFile: clientKeyPath + ".pub", encoding: .utf8)
        let authorized = ([clientPublic.trimmingCharacters(in: .whitespacesAndNewlines)] + extraAuthorizedKeys)
            .joined(separator: "\n") + "\n"
        try authorized.write(toFile: directory.file("authorized_keys"), atomically: true, encoding: .utf8)

        // Another test (or another test process) may take the same free port first: then this
        // sshd fails to bind and exits, and a connection would reach the other server. So a
        // server counts as started only once its own PID file names it; else try another port.
        var started: (port: Int, pid: pid_t)?
        for _ in 0..<5 where started == nil {
            started = try Self.start(directory: directory, hostKeys: hostKeys, extraConfig: extraConfig)
        }
        guard let started else {
            let log = (try? String(contentsOfFile: directory.file("sshd.log"), encoding: .utf8)) ?? ""
            throw LocalCommandFailed(command: ["sshd"], result: LocalResult(status: -1, stdout: "", stderr: log))
        }
        port = started.port
        pid = started.pid

        var lines: [String: String] = [:]
        for (type, hostKey) in zip(hostKeyTypes, hostKeys) {
            let parts = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8).split(separator: " ")
            lines[type] = "[127.0.0.1]:\(port) \(parts[0]) \(parts[1])"
        }
        hostPublicKeyLines = lines
        hostPublicKeyLine = lines[hostKeyTypes[0]] ?? ""
        knownHostsPath = directory.file("known_hosts")
        try (hostPublicKeyLine + "\n").write(toFile: knownHostsPath, atomically: true, encoding: .utf8)
    }

    /// One attempt at starting sshd on a free port; nil when it lost the port to someone else.
    private static func start(directory: TemporaryDirectory, hostKeys: [String], extraConfig: String) throws -> (port: Int, pid: pid_t)? {
        let port = try freePort()
        // sshd keeps the first value it reads for a keyword, so the caller's lines go first.
        let config = """
            \(extraConfig)
            Port \(port)
            ListenAddress 127.0.0.1
            \(hostKeys.map { "HostKey \($0)" }.joined(separator: "\n"))
            PidFile \(directory.file("sshd.pid"))
            AuthorizedKeysFile \(directory.file("authorized_keys"))
            PermitRootLogin yes
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            LogLevel ERROR
            MaxSessions 100
            MaxStartups 100:30:200

            """
        try config.write(toFile: directory.file("sshd_config"), atomically: true, encoding: .utf8)
        let pidFile = directory.file("sshd.pid")
        try? FileManager.default.removeItem(atPath: pidFile)
        let pid = try spawnBackground(["/usr/sbin/sshd", "-D", "-e", "-f", directory.file("sshd_config")], logPath: directory.file("sshd.log"))
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return nil }
            let written = (try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if written == String(pid), canConnect(port: port) { return (port, pid) }
            usleep(10_000)
        }
        stopBackground(pid)
        return nil
    }

    deinit { stop() }

    public func stop() {
        let first = stopped.withLock { () -> Bool in
            defer { isStopped = true }
            return !isStopped
        }
        guard first else { return }
        stopBackground(pid)
        directory.remove()
    }

    /// Options for logging in as `user` with the server's client key and its known_hosts.
    public func options(user: String = "root", credentials: [SSHCredential]? = nil, policy: HostKeyPolicy = .strict)
        -> SSHOptions
    {
        SSHOptions(
            endpoint: SSHEndpoint(host: "127.0.0.1", port: port, user: user),
            credentials: credentials ?? [.keyFile(path: clientKeyPath, passphrase: nil)],
            knownHostsPath: knownHostsPath,
            hostKeyPolicy: policy,
            connectTimeout: .seconds(5))
    }

    public func addAuthorizedKey(_ publicKeyLine: String) throws {
        let path = directory.file("authorized_keys")
        let existing = try String(contentsOfFile: path, encoding: .utf8)
        try (existing + publicKeyLine.trimmingCharacters(in: .whitespacesAndNewlines) + "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A port the kernel just handed out for a moment: free now, very likely free a moment later.
    public static func freePort() throws -> Int {
        for _ in 0..<20 {
            let port = try kernelFreePort()
            // Never hand the same port to two servers of this process, even after the first stopped.
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        return try kernelFreePort()
    }

    private static let handedOut = Mutex<Set<Int>>([])

    private static func kernelFreePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                guard bind(fd, sockaddrPointer, length) == 0, getsockname(fd, sockaddrPointer, &length) == 0 else {
                    throw LocalCommandFailed(command: ["bind"], result: LocalResult(status: errno, stdout: "", stderr: "no free port"))
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
