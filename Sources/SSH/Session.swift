import CLibSSH2
import Foundation
import Synchronization

/// A libssh2 session in non-blocking mode with its socket.
///
/// Not thread-safe by itself: every method must run on `queue` (libssh2 forbids using one session
/// from two threads at once). SSHClient is the only user and always hops onto the queue.
final class Session: @unchecked Sendable {
    let queue: DispatchQueue
    let host: String
    let options: SSHOptions
    private var raw: OpaquePointer?
    private var socket: Int32 = -1
    /// Set when a call was abandoned half-way (timeout, cancellation): libssh2's state is then
    /// unknown, so the session must not be used again.
    private(set) var broken = false
    let cancelled = Atomic<Bool>(false)
    private var keepaliveTimer: DispatchSourceTimer?

    init(options: SSHOptions) {
        self.options = options
        self.host = options.endpoint.description
        self.queue = DispatchQueue(label: "labctl.ssh.\(options.endpoint.host):\(options.endpoint.port)")
    }

    deinit {
        keepaliveTimer?.cancel()
        if let raw { libssh2_session_free(raw) }
        if socket >= 0 { Glibc.close(socket) }
    }

    func error(_ operation: SSHError.Operation, _ kind: SSHError.Kind) -> SSHError {
        SSHError(host: host, operation: operation, kind: kind)
    }

    // MARK: Connecting

    /// The lines of known_hosts that were ignored as unreadable, from the last `open()`.
    private(set) var knownHostsWarnings: [String] = []
    /// The host key `accept-new` recorded in known_hosts on the last `open()`, as
    /// "ssh-ed25519 SHA256:... in PATH"; nil when the key was known.
    private(set) var recordedHostKey: String?

    /// `keepaliveTimer`: false when the caller sends the session's keepalives itself (a jump
    /// host's session, which only its tunnel's thread may touch).
    func open(keepaliveTimer: Bool = true) throws(SSHError) {
        _ = LibSSH2.initialised
        if let trace = options.trace { trace.emit("\(trace.label): \(trace.connecting)") }
        // Read before connecting: an unreadable file fails at once, without the network, and the
        // keys it lists decide which host key to ask for.
        let knownHosts: KnownHostsFile
        do {
            knownHosts = try KnownHostsFile.read(path: options.knownHostsPath)
        } catch {
            throw self.error(.hostKey, .localFile(path: error.path, reason: error.reason))
        }
        knownHostsWarnings = knownHosts.warnings
        let start = ContinuousClock.now
        // connect_timeout bounds the whole connection: TCP, handshake and authentication (a
        // listener that accepts and never speaks is given up on at that limit, not later).
        let connectTimeout = Self.clamped(options.connectTimeout)
        let connectDeadline = start + connectTimeout
        if options.jumps.isEmpty {
            socket = try connectSocket(deadline: connectDeadline)
        } else {
            socket = try JumpTunnel.socket(
                to: options.endpoint.host, port: options.endpoint.port, through: options.jumps, deadline: connectDeadline, timeout: connectTimeout)
        }
        guard let session = labctl_session_init() else {
            throw error(.handshake, .protocolError(code: -1, message: "libssh2 could not allocate a session"))
        }
        raw = session
        libssh2_session_set_blocking(session, 0)
        let endpoint = options.endpoint
        let algorithms = knownHosts.hostKeyAlgorithms(host: endpoint.host, port: endpoint.port).joined(separator: ",")
        // libssh2 drops the names it does not know; it fails only if none is left, and then its
        // own order is all there is.
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, algorithms)
        let handshakeTimeout = Self.clamped(options.handshakeTimeout)
        let handshakeDeadline = ContinuousClock.now + handshakeTimeout
        let deadline = min(connectDeadline, handshakeDeadline)
        handshakeBudget = connectDeadline <= handshakeDeadline ? connectTimeout : handshakeTimeout
        let rc = try retry(.handshake, deadline: deadline) { libssh2_session_handshake(session, self.socket) }
        guard rc == 0 else { throw libssh2Error(.handshake, rc) }
        try verifyHostKey(session, knownHosts: knownHosts)
        try authenticate(session, deadline: deadline)
        if let interval = options.keepaliveInterval {
            if keepaliveTimer {
                startKeepalives(session, interval: interval)
            } else {
                libssh2_keepalive_config(session, 0, UInt32(min(max(2, Int(Self.clamped(interval).components.seconds)), 86_400)))
            }
        }
    }

    private func connectSocket(deadline: ContinuousClock.Instant) throws(SSHError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(options.endpoint.host, String(options.endpoint.port), &hints, &list)
        guard gai == 0, let first = list else {
            throw error(.connect, .nameNotResolved(String(cString: gai_strerror(gai))))
        }
        defer { freeaddrinfo(list) }
        var lastError: SSHError = error(.connect, .unreachable("no address to try"))
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
            // A host that is powered off or cut from the network sends no reset: without this
            // a command with no timeout of its own would wait on it for hours (TCP's idle
            // keepalive is 2 hours, its retransmissions 15 minutes). The kernel probes an idle
            // connection every keepalive interval, and three probes or that much unacknowledged
            // data without an answer end it (OpenSSH's ServerAliveCountMax of 3), reported as
            // a lost connection.
            if let interval = options.keepaliveInterval {
                var seconds = Int32(min(max(2, Int(Self.clamped(interval).components.seconds)), 86_400))
                var count: Int32 = 3
                var milliseconds = UInt32(seconds) * 3 * 1000
                let size = socklen_t(MemoryLayout<Int32>.size)
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &seconds, size)
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &seconds, size)
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, size)
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &milliseconds, size)
            }
            var status = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 ? 0 : errno
            if status == EINPROGRESS {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, Self.milliseconds(until: deadline))
                if ready == 0 {
                    Glibc.close(fd)
                    throw error(.connect, .timeout(Self.clamped(options.connectTimeout)))
                }
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                status = ready < 0 ? errno : soError
            }
            if status == 0 { return fd }
            Glibc.close(fd)
            if status == ECONNREFUSED {
                lastError = error(.connect, .connectionRefused)
            } else {
                lastError = error(.connect, .unreachable(String(cString: strerror(status))))
            }
        }
        throw lastError
    }

    private func verifyHostKey(_ session: OpaquePointer, knownHosts file: KnownHostsFile) throws(SSHError) {
        var length = 0
        var type: Int32 = 0
        guard let pointer = libssh2_session_hostkey(session, &length, &type) else {
            throw error(.hostKey, .protocolError(code: -1, message: "the server sent no host key"))
        }
        let key = [UInt8](UnsafeRawBufferPointer(start: pointer, count: length))
        let fingerprint = SHA256Digest.opensshFingerprint(key)
        let typeName = hostKeyTypeName(type)
        let endpoint = options.endpoint
        var verdict = file.verify(host: endpoint.host, port: endpoint.port, key: key)
        if verdict == .unknown, options.hostKeyPolicy == .acceptNew, KnownHostsFile.canRecord(host: endpoint.host) {
            do {
                verdict = try file.appendIfUnknown(host: endpoint.host, port: endpoint.port, key: key, keyType: type)
            } catch {
                throw self.error(.hostKey, .localFile(path: file.path, reason: "could not record the host key: \(error)"))
            }
            // Recorded now, or by another session since the file was first read.
            if verdict == .unknown {
                recordedHostKey = "\(typeName) \(fingerprint) in \(file.path)"
                return
            }
        }
        switch verdict {
        case .known:
            return
        case .revoked(let line):
            throw error(.hostKey, .hostKeyRevoked(
                fingerprint: fingerprint, knownHostsPath: file.path, line: line, warnings: file.warnings))
        case .changed(let line, let expectedType, let expected):
            throw error(.hostKey, .hostKeyMismatch(
                keyType: typeName, presented: fingerprint, expectedKeyType: expectedType, expected: expected,
                knownHostsPath: file.path, line: line, warnings: file.warnings))
        case .unknown:
            throw error(.hostKey, .hostKeyUnknown(
                keyType: typeName, fingerprint: fingerprint, knownHostsPath: file.path, warnings: file.warnings))
        }
    }

    // MARK: Authentication

    private func authenticate(_ session: OpaquePointer, deadline: ContinuousClock.Instant) throws(SSHError) {
        let user = options.endpoint.user
        var reasons: [String] = []
        var rsaKeyRefused: String?
        for credential in options.credentials {
            switch credential {
            case .keyFile(let path, let passphrase):
                let keyFile: PrivateKeyFile
                do {
                    keyFile = try PrivateKeyFile(path: path)
                } catch {
                    // A key that cannot be used does not stop a password or agent given too.
                    guard options.credentials.count > 1 else { throw self.error(.authenticate, error) }
                    if case .localFile(let path, let reason) = error { reasons.append("\(path): \(reason)") }
                    continue
                }
                if keyFile.isEncrypted && passphrase == nil {
                    reasons.append("\(path) is protected by a passphrase and none was given (set LABCTL_KEY_PASSPHRASE or run in a terminal to be asked)")
                    continue
                }
                let rc = try retry(.authenticate, deadline: deadline) {
                    labctl_userauth_publickey_fromfile(session, user, path, passphrase ?? "")
                }
                if rc == 0 { return }
                if case .pkcs8 = keyFile.format {
                    reasons.append("\(path) is in PKCS#8 form, which libssh2 cannot sign with; convert it with ssh-keygen -p -f \(path)")
                } else if rc == LIBSSH2_ERROR_FILE {
                    reasons.append(keyFile.isEncrypted
                        ? "\(path) could not be unlocked: wrong passphrase"
                        : "\(path) could not be read as a private key")
                } else if keyFile.isRSA {
                    rsaKeyRefused = path
                    reasons.append("the server refused the RSA key \(path)")
                } else {
                    reasons.append("the server refused the key \(path)")
                }
            case .agent(let socketPath):
                if let reason = try authenticateWithAgent(session, user: user, socketPath: socketPath, deadline: deadline) {
                    if reason.hasPrefix("rsa:") {
                        rsaKeyRefused = "(the ssh-agent's RSA key)"
                        reasons.append(String(reason.dropFirst(4)))
                    } else {
                        reasons.append(reason)
                    }
                } else {
                    return
                }
            case .password(let password):
                let rc = try retry(.authenticate, deadline: deadline) {
                    labctl_userauth_password(session, user, password)
                }
                if rc == 0 { return }
                reasons.append("the server refused the password for \(user)")
            }
        }
        if let rsaKeyRefused, reasons.count == 1 || options.credentials.count == 1 {
            throw error(.authenticate, .rsaKeyUnsupported(keyPath: rsaKeyRefused))
        }
        throw error(.authenticate, .authenticationFailed(reasons: reasons))
    }

    /// nil on success, else why it failed ("rsa:"-prefixed when only RSA identities were offered).
    private func authenticateWithAgent(
        _ session: OpaquePointer, user: String, socketPath: String?, deadline: ContinuousClock.Instant
    ) throws(SSHError) -> String? {
        guard let agent = libssh2_agent_init(session) else { return "ssh-agent support is unavailable" }
        defer {
            libssh2_agent_disconnect(agent)
            libssh2_agent_free(agent)
        }
        let path = socketPath ?? ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"]
        guard let path, !path.isEmpty else { return "no ssh-agent (SSH_AUTH_SOCK is not set)" }
        libssh2_agent_set_identity_path(agent, path)
        guard libssh2_agent_connect(agent) == 0 else { return "could not reach the ssh-agent at \(path)" }
        guard libssh2_agent_list_identities(agent) == 0 else { return "the ssh-agent did not list its keys" }
        var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        var offered = 0
        var onlyRSA = true
        while libssh2_agent_get_identity(agent, &identity, previous) == 0, let current = identity {
            offered += 1
            let blob = [UInt8](UnsafeBufferPointer(start: current.pointee.blob, count: Int(current.pointee.blob_len)))
            if !Data(blob.prefix(11)).elementsEqual(Data([0, 0, 0, 7] + Array("ssh-rsa".utf8))) { onlyRSA = false }
            let rc = try retry(.authenticate, deadline: deadline) { libssh2_agent_userauth(agent, user, current) }
            if rc == 0 { return nil }
            previous = current
        }
        if offered == 0 { return "the ssh-agent holds no keys" }
        return onlyRSA
            ? "rsa:the server refused the ssh-agent's RSA keys"
            : "the server refused all \(offered) keys of the ssh-agent"
    }

    // MARK: Keepalives

    private func startKeepalives(_ session: OpaquePointer, interval: Duration) {
        let seconds = min(max(2, Int(Self.clamped(interval).components.seconds)), 86_400)
        // want_reply=0: libssh2 1.10 lets replies pile up otherwise.
        libssh2_keepalive_config(session, 0, UInt32(seconds))
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .seconds(seconds), repeating: .seconds(seconds))
        timer.setEventHandler { [weak self] in self?.sendKeepalive() }
        timer.resume()
        keepaliveTimer = timer
    }

    private func sendKeepalive() {
        guard let raw, !broken else { return }
        var next: Int32 = 0
        _ = libssh2_keepalive_send(raw, &next)
    }

    // MARK: Waiting

    /// Repeats a libssh2 call while it says EAGAIN, polling the socket in between.
    func retry(_ operation: SSHError.Operation, deadline: ContinuousClock.Instant?, _ call: () -> Int32) throws(SSHError) -> Int32 {
        while true {
            let rc = call()
            if rc != LibSSH2.again { return rc }
            try waitForSocket(operation, deadline: deadline)
        }
    }

    /// Same as `retry` for calls that return a pointer, NULL with EAGAIN meaning "again".
    func retryPointer<T>(_ operation: SSHError.Operation, deadline: ContinuousClock.Instant?, _ call: () -> T?) throws(SSHError) -> T? {
        while true {
            if let value = call() { return value }
            guard let raw, libssh2_session_last_errno(raw) == LibSSH2.again else { return nil }
            try waitForSocket(operation, deadline: deadline)
        }
    }

    func waitForSocket(_ operation: SSHError.Operation, deadline: ContinuousClock.Instant?) throws(SSHError) {
        guard let raw else { throw error(operation, .sessionClosed) }
        if cancelled.load(ordering: .relaxed) {
            broken = true
            throw error(operation, .cancelled)
        }
        let directions = libssh2_session_block_directions(raw)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        // Wake at least every 200 ms to notice cancellation and to send keepalives during long commands.
        var timeout: Int32 = 200
        if let deadline {
            let remaining = Self.milliseconds(until: deadline)
            if remaining <= 0 {
                broken = true
                throw error(operation, .timeout(timeoutBudget(for: operation)))
            }
            timeout = min(timeout, remaining)
        }
        var pfd = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&pfd, 1, timeout)
        if options.keepaliveInterval != nil {
            var next: Int32 = 0
            _ = libssh2_keepalive_send(raw, &next)
        }
    }

    /// The limit reported in a timeout error: the one the caller set for this kind of call.
    var commandTimeout: Duration?
    /// The limit that bounds the handshake and authentication: what is left of the connect
    /// timeout, or the handshake timeout when that is shorter. Named as the configured value.
    private var handshakeBudget: Duration?
    private func timeoutBudget(for operation: SSHError.Operation) -> Duration {
        switch operation {
        case .connect: return Self.clamped(options.connectTimeout)
        case .handshake, .hostKey, .authenticate: return handshakeBudget ?? Self.clamped(options.handshakeTimeout)
        case .exec, .upload: return commandTimeout ?? .seconds(0)
        }
    }

    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
        (deadline - .now).pollMilliseconds
    }

    /// Any Duration a caller gives, made safe to add to an instant and to print: at least zero,
    /// at most `Duration.longestWait` (deadlines further away are no different in practice).
    static func clamped(_ duration: Duration) -> Duration {
        min(max(duration, .zero), .longestWait)
    }

    func libssh2Error(_ operation: SSHError.Operation, _ code: Int32) -> SSHError {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        if let raw { libssh2_session_last_error(raw, &message, &length, 0) }
        let text = message.map { String(cString: $0) } ?? "unknown error"
        if code == LIBSSH2_ERROR_SOCKET_DISCONNECT || code == LIBSSH2_ERROR_SOCKET_RECV || code == LIBSSH2_ERROR_SOCKET_SEND {
            broken = true
        }
        return error(operation, .protocolError(code: code, message: text))
    }

    var rawSession: OpaquePointer? { raw }
    var socketDescriptor: Int32 { socket }

    func markBroken() { broken = true }
    func brokenReset() { broken = false }

    // MARK: Closing

    func close() {
        keepaliveTimer?.cancel()
        keepaliveTimer = nil
        if let raw {
            if !broken {
                let deadline = ContinuousClock.now + .seconds(1)
                _ = try? retry(.exec, deadline: deadline) { labctl_session_disconnect(raw, "labctl done") }
            }
            libssh2_session_free(raw)
            self.raw = nil
        }
        if socket >= 0 {
            Glibc.close(socket)
            socket = -1
        }
    }
}

extension Duration {
    /// The longest wait the SSH module uses (about 68 years): longer Durations are clamped to it,
    /// so that no deadline or `timeout N` overflows.
    static let longestWait = Duration.seconds(Int64(Int32.max))
}
