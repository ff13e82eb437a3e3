import CLibSSH2
import Foundation

extension Session {
    /// Reconnects when an earlier call left the session unusable (after a timeout half-way
    /// through a call, libssh2's state is unknown: its non-blocking calls cannot be resumed
    /// from another place).
    func reopenIfBroken() throws(SSHError) {
        guard broken || rawSession == nil else { return }
        close()
        cancelled.store(false, ordering: .relaxed)
        brokenReset()
        try open()
    }

    func exec(_ command: RemoteCommand, operation: SSHError.Operation = .exec, onLine: (@Sendable (OutputLine) -> Void)?)
        throws(SSHError) -> CommandResult
    {
        try reopenIfBroken()
        guard let raw = rawSession else { throw error(operation, .sessionClosed) }
        let start = ContinuousClock.now
        commandTimeout = command.timeout.map(Session.clamped)
        // The host enforces the timeout (`timeout -k 5`); this one only catches a host that hangs.
        let deadline = commandTimeout.map { start + $0 + .seconds(10) }
        let stdin = command.stdin
        // The password travels only as an answer to sudo's prompt: see SudoPasswordExchange.
        var exchange: SudoPasswordExchange?
        var password: [UInt8] = []
        if case .sudoWithPassword(let secret) = command.become {
            exchange = SudoPasswordExchange()
            password = Array((secret + "\n").utf8)
        }
        let commandLine = ShellQuoting.wrap(command, exchange: exchange)
        if let trace = options.trace { trace.emit("\(trace.label): $ \(commandLine)") }

        guard let channel = try retryPointer(operation, deadline: deadline, { labctl_channel_open_session(raw) }) else {
            throw libssh2Error(operation, libssh2_session_last_errno(raw))
        }
        var freed = false
        defer { if !freed { libssh2_channel_free(channel) } }

        var rc = try retry(operation, deadline: deadline) { labctl_channel_exec(channel, commandLine) }
        guard rc == 0 else { throw libssh2Error(operation, rc) }

        var written = 0
        var passwordWritten: Int?
        // Why and since when labctl stopped talking to sudo; the command never started.
        var abandoned: (kind: SSHError.Kind, at: ContinuousClock.Instant)?
        var lastSudoOutput = ContinuousClock.now
        var eofSent = false
        var stdout = Data()
        var stderr = Data()
        var stdoutLines = LineSplitter(stream: .stdout)
        var stderrLines = LineSplitter(stream: .stderr)
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        // libssh2 keeps a packet it could only half send and requires the very same call again
        // before any other call that sends (a read may send a window adjust): else it fails with
        // LIBSSH2_ERROR_BAD_USE, reported as a send error. Seen when the socket's buffer is small
        // (a jump host's socket pair) or the link slow. So such a call is repeated first, alone.
        enum Call { case password, eof, stdin, stdout, stderr }
        var halfSent: Call?
        func may(_ call: Call) -> Bool { halfSent == nil || halfSent == call }
        func note(_ call: Call, _ result: Int) {
            if result == Int(LibSSH2.again), let raw = rawSession,
                libssh2_session_block_directions(raw) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0
            {
                halfSent = call
            } else if halfSent == call {
                halfSent = nil
            }
        }

        while true {
            var progressed = false
            let stdinFlows = exchange.map { $0.state == .started } ?? true
            if may(.password), !eofSent, abandoned == nil, let sent = passwordWritten, sent < password.count, exchange?.state == .answered {
                let count = password[sent...].withUnsafeBytes { bytes in
                    labctl_channel_write(channel, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
                }
                note(.password, count)
                if count > 0 {
                    passwordWritten = sent + count
                    progressed = true
                } else if count < 0, count != Int(LibSSH2.again) {
                    guard libssh2_channel_eof(channel) == 1 else { throw libssh2Error(operation, Int32(count)) }
                    eofSent = true
                }
            }
            if may(.eof), !eofSent, abandoned != nil {
                // Nothing more is offered, and EOF makes sudo give up at once.
                let eof = libssh2_channel_send_eof(channel)
                note(.eof, Int(eof))
                if eof != LibSSH2.again { eofSent = true }
            }
            if !eofSent, stdinFlows {
                if may(.stdin), written < stdin.count {
                    let sent = stdin[written...].withUnsafeBytes { bytes in
                        labctl_channel_write(channel, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), min(bytes.count, 32 * 1024))
                    }
                    note(.stdin, sent)
                    if sent > 0 {
                        written += sent
                        progressed = true
                    } else if sent < 0, sent != Int(LibSSH2.again) {
                        // The command ended without reading all of its input: not an error of ours.
                        guard libssh2_channel_eof(channel) == 1 else { throw libssh2Error(operation, Int32(sent)) }
                        eofSent = true
                    }
                }
                if may(.eof), written == stdin.count, !eofSent {
                    let eof = libssh2_channel_send_eof(channel)
                    note(.eof, Int(eof))
                    if eof == 0 { eofSent = true } else if eof != LibSSH2.again { eofSent = true }
                }
            }

            let outCount = may(.stdout) ? buffer.withUnsafeMutableBufferPointer { labctl_channel_read(channel, $0.baseAddress, $0.count) } : Int(LibSSH2.again)
            if may(.stdout) { note(.stdout, outCount) }
            if outCount > 0 {
                let chunk = buffer.withUnsafeBytes { Data($0.prefix(outCount)) }
                stdout.append(chunk)
                if let onLine { stdoutLines.feed(chunk, to: onLine) }
                progressed = true
            } else if outCount < 0, outCount != Int(LibSSH2.again) {
                throw libssh2Error(operation, Int32(outCount))
            }
            let errCount = may(.stderr) ? buffer.withUnsafeMutableBufferPointer { labctl_channel_read_stderr(channel, $0.baseAddress, $0.count) } : Int(LibSSH2.again)
            if may(.stderr) { note(.stderr, errCount) }
            if errCount > 0 {
                var chunk = buffer.withUnsafeBytes { Data($0.prefix(errCount)) }
                if exchange != nil {
                    let (visible, asked) = exchange!.stderr(chunk)
                    chunk = visible
                    if asked { passwordWritten = 0 }
                    lastSudoOutput = .now
                    if exchange?.state == .refused, abandoned == nil {
                        abandoned = (.becomePasswordRefused(user: options.endpoint.user), .now)
                    }
                }
                stderr.append(chunk)
                if let onLine { stderrLines.feed(chunk, to: onLine) }
                progressed = true
            } else if errCount < 0, errCount != Int(LibSSH2.again) {
                throw libssh2Error(operation, Int32(errCount))
            }

            if stdout.count + stderr.count + (exchange?.heldCount ?? 0) > command.outputLimit {
                libssh2_channel_free(channel)
                freed = true
                // The remote command may still be writing; the session cannot be trusted with it.
                markBroken()
                throw error(operation, .outputTooLarge(limit: command.outputLimit))
            }
            if abandoned == nil, let exchange, ContinuousClock.now - lastSudoOutput > .seconds(3),
                let prompt = exchange.unansweredPrompt
            {
                // Something before the command waits for input with a prompt that is not sudo's
                // (a second factor, a PAM module's own): it is not offered the password.
                abandoned = (.becomePromptUnrecognised(prompt: prompt), .now)
            }
            if let abandoned, ContinuousClock.now - abandoned.at > .seconds(5) {
                // sudo did not end on EOF: the session cannot be trusted with what still runs.
                libssh2_channel_free(channel)
                freed = true
                markBroken()
                throw error(operation, abandoned.kind)
            }
            if !progressed {
                if halfSent == nil, libssh2_channel_eof(channel) == 1 { break }
                // Data already inside libssh2's buffers does not wake poll(): read it first.
                var available: UInt = 0
                _ = libssh2_channel_window_read_ex(channel, &available, nil)
                if available > 0 { continue }
                try waitForSocket(operation, deadline: deadline)
            }
        }
        if exchange != nil {
            let unseen = exchange!.finish()
            stderr.append(unseen)
            if let onLine { stderrLines.feed(unseen, to: onLine) }
        }
        if let onLine {
            stdoutLines.finish(to: onLine)
            stderrLines.finish(to: onLine)
        }

        rc = try retry(operation, deadline: deadline) { libssh2_channel_close(channel) }
        if rc == 0 { rc = try retry(operation, deadline: deadline) { libssh2_channel_wait_closed(channel) } }
        guard rc == 0 else { throw libssh2Error(operation, rc) }
        if let abandoned { throw error(operation, abandoned.kind) }
        // With `passwd_tries=1` sudo gives up without asking again.
        if exchange?.state == .answered && String(decoding: stderr, as: UTF8.self).contains("incorrect password attempt")
        {
            throw error(operation, .becomePasswordRefused(user: options.endpoint.user))
        }
        let status = libssh2_channel_get_exit_status(channel)
        var signalName: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        _ = libssh2_channel_get_exit_signal(channel, &signalName, &signalLength, nil, nil, nil, nil)
        var signal: String?
        if let signalName {
            if signalLength > 0 {
                signal = String(decoding: UnsafeRawBufferPointer(start: signalName, count: signalLength), as: UTF8.self)
            }
            libssh2_free(raw, signalName)
        }
        return CommandResult(
            stdout: stdout, stderr: stderr, exitStatus: status, exitSignal: signal,
            duration: ContinuousClock.now - start)
    }
}

/// Cuts a byte stream into lines for live output; a line split across reads is held back.
struct LineSplitter {
    let stream: OutputStream
    private var pending: [UInt8] = []

    init(stream: OutputStream) {
        self.stream = stream
    }

    mutating func feed(_ chunk: Data, to handler: (OutputLine) -> Void) {
        pending.append(contentsOf: chunk)
        var lineStart = 0
        for index in pending.indices where pending[index] == UInt8(ascii: "\n") {
            emit(pending[lineStart..<index], to: handler)
            lineStart = index + 1
        }
        pending.removeFirst(lineStart)
    }

    mutating func finish(to handler: (OutputLine) -> Void) {
        if !pending.isEmpty { emit(pending[...], to: handler) }
        pending.removeAll()
    }

    private func emit(_ bytes: ArraySlice<UInt8>, to handler: (OutputLine) -> Void) {
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\r") { text.removeLast() }
        handler(OutputLine(stream: stream, text: text))
    }
}
