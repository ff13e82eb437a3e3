import CLibSSH2
import Foundation
import Synchronization

/// Connections through a jump host (OpenSSH's ProxyJump): the jump host's own SSH session,
/// checked and authenticated like any other, carries one `direct-tcpip` channel per host behind
/// it; each channel is joined to one end of a socket pair whose other end the inner session uses
/// as its socket, so the inner session is an ordinary libssh2 session and knows nothing of it.
///
/// Written here because libssh2 has channels but nothing that moves their bytes to a socket.
/// Hosts behind one jump host share its session: one connection to it, one thread pumping
/// every channel, gone when the last channel closes.
final class JumpTunnel: @unchecked Sendable {
    /// Open tunnels by the chain that reaches them, so hosts behind one jump host share it.
    private static let open = Mutex<[String: JumpTunnel]>([:])

    /// A socket that reaches `host`:`port` through `jumps` (the first is contacted directly, each
    /// next one through the one before). Blocks until the channel is open or `deadline` passes.
    static func socket(to host: String, port: Int, through jumps: [SSHOptions], deadline: ContinuousClock.Instant, timeout: Duration)
        throws(SSHError) -> Int32
    {
        guard let last = jumps.last else { throw SSHError(host: host, operation: .connect, kind: .unreachable("no jump host")) }
        var jump = last
        jump.jumps = Array(jumps.dropLast())
        let key = jump.tunnelKey
        let tunnel = Self.open.withLock { tunnels in
            if let existing = tunnels[key], !existing.closing.load(ordering: .acquiring) { return existing }
            let made = JumpTunnel(key: key, options: jump)
            tunnels[key] = made
            return made
        }
        return try tunnel.channel(to: host, port: port, deadline: deadline, timeout: timeout)
    }

    private let key: String
    /// The jump host's session. Until `state` is ready only the opening caller uses it, then only
    /// the pump thread.
    private let session: Session
    private let condition = NSCondition()
    private enum State { case idle, opening, ready, failed(SSHError) }
    /// Guarded by `condition`.
    private var state = State.idle
    private let requests = Mutex<[Request]>([])
    let closing = Atomic<Bool>(false)
    /// Wakes the pump's poll when a request arrives.
    private var wake: (read: Int32, write: Int32) = (-1, -1)

    private init(key: String, options: SSHOptions) {
        self.key = key
        self.session = Session(options: options)
    }

    /// A channel asked for by an inner session, answered by the pump thread.
    final class Request: @unchecked Sendable {
        let host: String
        let port: Int
        let deadline: ContinuousClock.Instant
        /// The connect timeout the deadline comes from, to name it.
        let timeout: Duration
        let answered = DispatchSemaphore(value: 0)
        /// Set by the pump before `answered` is signalled.
        var result: Result<Int32, SSHError>?
        /// Set by the asker when it stopped waiting: the pump then closes what it made.
        let abandoned = Atomic<Bool>(false)

        init(host: String, port: Int, deadline: ContinuousClock.Instant, timeout: Duration) {
            self.host = host
            self.port = port
            self.deadline = deadline
            self.timeout = timeout
        }
    }

    private func channel(to host: String, port: Int, deadline: ContinuousClock.Instant, timeout: Duration) throws(SSHError) -> Int32 {
        try ready()
        let request = Request(host: host, port: port, deadline: deadline, timeout: timeout)
        requests.withLock { $0.append(request) }
        poke()
        let waited = request.answered.wait(timeout: .now() + .milliseconds(Int(Session.milliseconds(until: deadline)) + 1000))
        if waited == .timedOut {
            request.abandoned.store(true, ordering: .releasing)
            throw SSHError(host: host, operation: .connect, kind: .timeout(timeout))
        }
        return try request.result!.get()
    }

    /// Opens the jump host's session once; callers that come meanwhile wait for it.
    private func ready() throws(SSHError) {
        condition.lock()
        while case .opening = state { condition.wait() }
        switch state {
        case .ready:
            condition.unlock()
            return
        case .failed(let error):
            condition.unlock()
            throw error
        case .idle, .opening:
            state = .opening
            condition.unlock()
        }
        var outcome: SSHError?
        do throws(SSHError) {
            // The pump sends the jump session's keepalives: no timer may touch it from elsewhere.
            try session.open(keepaliveTimer: false)
        } catch {
            outcome = error
        }
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        if let outcome {
            state = .failed(outcome)
            // The next run (or host) tries the jump host again.
            closing.store(true, ordering: .releasing)
            Self.open.withLock { tunnels in if tunnels[key] === self { tunnels[key] = nil } }
            throw outcome
        }
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wake = (fds[0], fds[1])
        state = .ready
        let thread = Thread { [self] in pump() }
        thread.name = "labctl.ssh.jump.\(session.host)"
        thread.start()
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    // MARK: the pump thread

    /// One channel joined to a socket pair.
    private final class Link {
        let channel: OpaquePointer
        /// The pump's end of the socket pair.
        let local: Int32
        var toLocal: [UInt8] = []
        var toChannel: [UInt8] = []
        var localEnded = false
        var channelEnded = false
        var shutLocal = false
        /// Over: the inner session closed its end (and our EOF went out), or something failed.
        var finished = false

        init(channel: OpaquePointer, local: Int32) {
            self.channel = channel
            self.local = local
        }

        var done: Bool { finished }
    }

    /// How a libssh2 call on the jump session went. libssh2 keeps a packet it could only half
    /// send and requires the very same call again before any other that sends (else
    /// LIBSSH2_ERROR_BAD_USE, which a window adjust reports as a send failure): so a call that
    /// leaves the session blocked outbound is repeated first, alone.
    private enum Outcome { case completed, waiting, halfSent }

    /// The pump thread's own state.
    private var links: [Link] = []
    private var opening: [Request] = []
    private var buffer = [UInt8](repeating: 0, count: 32_768)

    private func blockedOutbound(_ raw: OpaquePointer) -> Bool {
        libssh2_session_block_directions(raw) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0
    }

    private func pump() {
        guard let raw = session.rawSession else { return }
        var freeing: [OpaquePointer] = []
        var idleSince: ContinuousClock.Instant? = nil
        var repeatFirst: (() -> Outcome)?
        loop: while true {
            if let again = repeatFirst {
                if again() == .halfSent {
                    wait(raw: raw)
                    continue
                }
                repeatFirst = nil
            }
            opening += requests.withLock { taken in defer { taken = [] }; return taken }
            work: do {
                for request in opening {
                    let outcome = open(request, raw: raw)
                    if outcome == .completed { opening.removeAll { $0 === request } }
                    if outcome == .halfSent {
                        repeatFirst = { [unowned self] in
                            let again = self.open(request, raw: raw)
                            if again == .completed { self.opening.removeAll { $0 === request } }
                            return again
                        }
                        break work
                    }
                }
                for link in links {
                    if let again = service(link, raw: raw) {
                        repeatFirst = again
                        break work
                    }
                }
            }
            for link in links where link.done {
                Glibc.close(link.local)
                freeing.append(link.channel)
            }
            links.removeAll { $0.done }
            if repeatFirst == nil { freeing = freeing.filter { libssh2_channel_free($0) == LibSSH2.again } }
            if session.broken || isDisconnected(raw) {
                // The jump host is gone: every host behind it sees its connection end.
                for link in links { Glibc.close(link.local) }
                links = []
                for request in opening { answer(request, .failure(lost())) }
                opening = []
                if retire(force: true) { break loop }
            }
            if links.isEmpty && opening.isEmpty && repeatFirst == nil {
                // A short grace, so that a run's hosts connecting one after another share it.
                let now = ContinuousClock.now
                if let since = idleSince, now - since > .seconds(2) {
                    if retire(force: false) { break loop }
                } else if idleSince == nil {
                    idleSince = now
                }
            } else {
                idleSince = nil
            }
            wait(raw: raw)
        }
        freeing.forEach { _ = libssh2_channel_free($0) }
        session.close()
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    private func isDisconnected(_ raw: OpaquePointer) -> Bool {
        let code = libssh2_session_last_errno(raw)
        return code == LIBSSH2_ERROR_SOCKET_DISCONNECT || code == LIBSSH2_ERROR_SOCKET_RECV || code == LIBSSH2_ERROR_SOCKET_SEND
    }

    private func lost() -> SSHError {
        SSHError(host: session.host, operation: .connect, kind: .sessionClosed)
    }

    /// Leaves the registry unless a request came meanwhile; true when the pump may stop.
    private func retire(force: Bool) -> Bool {
        Self.open.withLock { tunnels in
            if !force, !requests.withLock({ $0.isEmpty }) { return false }
            closing.store(true, ordering: .releasing)
            if tunnels[key] === self { tunnels[key] = nil }
            let late = requests.withLock { taken in defer { taken = [] }; return taken }
            for request in late { answer(request, .failure(lost())) }
            return true
        }
    }

    private func answer(_ request: Request, _ result: Result<Int32, SSHError>) {
        if request.abandoned.load(ordering: .acquiring), case .success(let fd) = result { Glibc.close(fd) }
        request.result = result
        request.answered.signal()
    }

    /// Tries to open the request's channel: completed once it is answered.
    private func open(_ request: Request, raw: OpaquePointer) -> Outcome {
        if request.abandoned.load(ordering: .acquiring) { return .completed }
        if ContinuousClock.now > request.deadline {
            answer(request, .failure(SSHError(host: request.host, operation: .connect, kind: .timeout(request.timeout))))
            return .completed
        }
        guard let channel = libssh2_channel_direct_tcpip_ex(raw, request.host, Int32(request.port), "127.0.0.1", 22) else {
            let code = libssh2_session_last_errno(raw)
            if code == LibSSH2.again { return blockedOutbound(raw) ? .halfSent : .waiting }
            var message: UnsafeMutablePointer<CChar>?
            var length: Int32 = 0
            libssh2_session_last_error(raw, &message, &length, 0)
            let why = message.map { String(cString: $0) } ?? "error \(code)"
            answer(request, .failure(SSHError(
                host: request.host, operation: .connect,
                kind: .unreachable("the jump host \(session.options.endpoint.host) could not connect to \(request.host) port \(request.port) (\(why))"))))
            return .completed
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else {
            _ = libssh2_channel_free(channel)
            answer(request, .failure(SSHError(host: request.host, operation: .connect, kind: .unreachable(String(cString: strerror(errno))))))
            return .completed
        }
        for fd in pair { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        links.append(Link(channel: channel, local: pair[0]))
        answer(request, .success(pair[1]))
        return .completed
    }

    /// Moves what can be moved for one link; returns the call to repeat first when one left a
    /// packet half sent.
    private func service(_ link: Link, raw: OpaquePointer) -> (() -> Outcome)? {
        if readChannel(link, raw: raw) == .halfSent { return { [unowned self] in self.readChannel(link, raw: raw) } }
        if !link.toLocal.isEmpty {
            // send, not write: a peer that closed its end must not raise SIGPIPE in this process.
            let written = link.toLocal.withUnsafeBytes { Glibc.send(link.local, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 {
                link.toLocal.removeFirst(written)
            } else if written < 0 && errno != EAGAIN && errno != EINTR {
                link.finished = true
                return nil
            }
        }
        if link.channelEnded && link.toLocal.isEmpty && !link.shutLocal {
            shutdown(link.local, Int32(SHUT_WR))
            link.shutLocal = true
        }
        if link.toChannel.isEmpty && !link.localEnded {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(link.local, $0.baseAddress, $0.count) }
            if n > 0 {
                link.toChannel += buffer[0..<n]
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                link.localEnded = true
            }
        }
        if writeChannel(link, raw: raw) == .halfSent { return { [unowned self] in self.writeChannel(link, raw: raw) } }
        if link.finished { return nil }
        // The inner session closed its socket: nothing it waits for is left to deliver.
        if link.localEnded && link.toChannel.isEmpty {
            let rc = libssh2_channel_send_eof(link.channel)
            if rc != LibSSH2.again {
                link.finished = true
            } else if blockedOutbound(raw) {
                return { [unowned self] in
                    let again = libssh2_channel_send_eof(link.channel)
                    if again != LibSSH2.again { link.finished = true; return .completed }
                    return self.blockedOutbound(raw) ? .halfSent : .waiting
                }
            }
        }
        return nil
    }

    /// From the far host towards the inner session, while there is room.
    private func readChannel(_ link: Link, raw: OpaquePointer) -> Outcome {
        while !link.channelEnded && !link.finished && link.toLocal.count < 262_144 {
            let n = buffer.withUnsafeMutableBytes { labctl_channel_read(link.channel, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            if n > 0 {
                link.toLocal += buffer[0..<n]
            } else if n == Int(LibSSH2.again) {
                return blockedOutbound(raw) ? .halfSent : .waiting
            } else if n == 0 {
                if libssh2_channel_eof(link.channel) != 0 { link.channelEnded = true }
                return .waiting
            } else {
                link.channelEnded = true
                link.finished = true
            }
        }
        return .completed
    }

    /// From the inner session towards the far host, as far as the far side's window allows.
    private func writeChannel(_ link: Link, raw: OpaquePointer) -> Outcome {
        while !link.toChannel.isEmpty && !link.finished {
            let n = link.toChannel.withUnsafeBytes { labctl_channel_write(link.channel, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            if n > 0 {
                link.toChannel.removeFirst(n)
            } else if n == Int(LibSSH2.again) || n == 0 {
                // 0: the far side's window is full for now.
                return n != 0 && blockedOutbound(raw) ? .halfSent : .waiting
            } else {
                link.finished = true
            }
        }
        return .completed
    }

    private func wait(raw: OpaquePointer) {
        var fds: [pollfd] = []
        let directions = libssh2_session_block_directions(raw)
        var events = Int16(POLLIN)
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        fds.append(pollfd(fd: session.socketDescriptor, events: events, revents: 0))
        fds.append(pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
        for link in links {
            var want: Int16 = 0
            if link.toChannel.isEmpty && !link.localEnded { want |= Int16(POLLIN) }
            if !link.toLocal.isEmpty { want |= Int16(POLLOUT) }
            fds.append(pollfd(fd: link.local, events: want, revents: 0))
        }
        _ = poll(&fds, nfds_t(fds.count), 200)
        var drain = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wake.read, &drain, drain.count) > 0 {}
        if session.options.keepaliveInterval != nil {
            var next: Int32 = 0
            _ = libssh2_keepalive_send(raw, &next)
        }
    }
}

extension SSHOptions {
    /// Who and how a jump host is reached: hosts with the same key share one tunnel.
    var tunnelKey: String {
        let chain = jumps.map { "\($0.endpoint)" }.joined(separator: ">")
        return chain + ">" + endpoint.description + "|" + knownHostsPath + "|" + hostKeyPolicy.rawValue + "|"
            + credentials.map(\.identity).joined(separator: ",")
    }
}

extension SSHCredential {
    /// What tells credentials apart, without the secret itself.
    var identity: String {
        switch self {
        case .keyFile(let path, _): return "key:" + path
        case .agent(let socket): return "agent:" + (socket ?? "")
        case .password: return "password"
        }
    }
}
