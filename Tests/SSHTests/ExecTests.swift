import Foundation
import SSH
import TestSupport
import Testing

/// Commands over a real OpenSSH sshd on loopback.
@Suite struct ExecTests {
    let server: TestSSHServer

    init() throws {
        server = try TestSSHServer()
    }

    func connect() async throws -> SSHClient {
        try await SSHClient.connect(server.options())
    }

    @Test func exitCodesAndStreamsAreSeparate() async throws {
        let client = try await connect()
        defer { Task { await client.close() } }
        let result = try await client.run(RemoteCommand("echo out; echo err >&2; exit 3"))
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
        #expect(result.exitStatus == 3)
        #expect(result.exitSignal == nil)
        #expect(!result.succeeded)
        let ok = try await client.run(RemoteCommand("true"))
        #expect(ok.succeeded)
    }

    @Test func exitSignalIsReported() async throws {
        let client = try await connect()
        let result = try await client.run(RemoteCommand("kill -TERM $$"))
        #expect(result.exitSignal == "TERM")
        #expect(!result.succeeded)
        await client.close()
    }

    @Test func fiftyMegabytesOfOutputArriveWhole() async throws {
        let client = try await connect()
        let result = try await client.run(RemoteCommand("head -c 52428800 /dev/zero | tr '\\0' 'x'; echo done >&2"))
        #expect(result.stdout.count == 52_428_800)
        #expect(result.stdout.allSatisfy { $0 == UInt8(ascii: "x") })
        // The login shell's rc file may print first (root's .bashrc here runs `pyenv init`,
        // whose rehash races with other shells): the command's own line is the last one.
        #expect(result.stderrText.hasSuffix("done\n"))
        await client.close()
    }

    @Test func outputLimitStopsTheCommandAndTheSessionRecovers() async throws {
        let client = try await connect()
        await #expect {
            try await client.run(RemoteCommand("head -c 10000000 /dev/zero", outputLimit: 1_000_000))
        } throws: { error in
            guard let error = error as? SSHError, case .outputTooLarge(let limit) = error.kind else { return false }
            return limit == 1_000_000
        }
        let after = try await client.run(RemoteCommand("echo still here"))
        #expect(after.stdoutText == "still here\n")
        await client.close()
    }

    @Test func linesStreamInOrderAsTheyArrive() async throws {
        let client = try await connect()
        let collected = Collected()
        let start = ContinuousClock.now
        let result = try await client.run(RemoteCommand("for i in 1 2 3; do echo line$i; sleep 0.3; done; echo tail >&2; printf partial")) { line in
            collected.append(line, at: ContinuousClock.now - start)
        }
        let lines = collected.lines
        #expect(lines.map(\.0.text) == ["line1", "line2", "line3", "partial", "tail"] || lines.map(\.0.text) == ["line1", "line2", "line3", "tail", "partial"])
        #expect(lines.filter { $0.0.stream == .stdout }.map(\.0.text) == ["line1", "line2", "line3", "partial"])
        // Streaming, not buffering: the first line was seen well before the command ended.
        let first = try #require(lines.first?.1)
        #expect(first < result.duration - .milliseconds(400))
        await client.close()
    }

    @Test func stdinReachesTheCommand() async throws {
        let client = try await connect()
        let input = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let result = try await client.run(RemoteCommand("sha256sum", stdin: input))
        let expected = try localSHA256(input)
        #expect(result.stdoutText.hasPrefix(expected))
        // A command that ignores its input still ends normally.
        let ignoring = try await client.run(RemoteCommand("echo ignored", stdin: Array(repeating: 65, count: 2_000_000)))
        #expect(ignoring.stdoutText == "ignored\n")
        await client.close()
    }

    @Test func environmentIsExportedQuoted() async throws {
        let client = try await connect()
        let result = try await client.run(RemoteCommand(
            "printf '%s|%s' \"$GREETING\" \"$ODD\"", environment: ["GREETING": "hello world", "ODD": "it's $HOME `x`"]))
        #expect(result.stdoutText == "hello world|it's $HOME `x`")
        await client.close()
    }

    @Test func timeoutIsEnforcedOnTheHost() async throws {
        let client = try await connect()
        let marker = "/tmp/labctl-timeout-\(UUID().uuidString)"
        let result = try await client.run(RemoteCommand("sleep 30; touch \(marker)", timeout: .seconds(1)))
        #expect(result.exitStatus == 124)
        // The host killed it: the marker never appears, even after the sleep would have ended.
        try await Task.sleep(for: .milliseconds(200))
        let check = try await client.run(RemoteCommand("pgrep -f '[s]leep 30; touch \(marker)' || echo gone"))
        #expect(check.stdoutText.contains("gone"))
        await client.close()
    }

    @Test func manyCommandsOnOneSession() async throws {
        let client = try await connect()
        for index in 0..<50 {
            let result = try await client.run(RemoteCommand("echo \(index)"))
            #expect(result.stdoutText == "\(index)\n")
        }
        await client.close()
    }

    @Test func uploadWritesAtomicallyWithMode() async throws {
        let client = try await connect()
        let folder = try TemporaryDirectory(prefix: "labctl-upload")
        defer { folder.remove() }
        let path = folder.file("config with space.conf")
        try await client.upload(Array("first\n".utf8), to: path, mode: 0o640)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        let inodeBefore = attributes[.systemFileNumber] as? Int

        let big = Array(repeating: UInt8(ascii: "y"), count: 10_000_000)
        try await client.upload(big, to: path, mode: 0o600)
        let after = try FileManager.default.attributesOfItem(atPath: path)
        #expect((after[.size] as? Int) == big.count)
        #expect((after[.posixPermissions] as? Int) == 0o600)
        // Replaced by rename, not rewritten in place: a reader holding the old file keeps it whole.
        #expect((after[.systemFileNumber] as? Int) != inodeBefore)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["config with space.conf"])

        await #expect(throws: SSHError.self) {
            try await client.upload([1, 2, 3], to: folder.file("missing-dir/x"), mode: 0o644)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["config with space.conf"])
        await client.close()
    }
}

final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(OutputLine, Duration)] = []
    func append(_ line: OutputLine, at time: Duration) { lock.withLock { items.append((line, time)) } }
    var lines: [(OutputLine, Duration)] { lock.withLock { items } }
}

func localSHA256(_ bytes: [UInt8]) throws -> String {
    let folder = try TemporaryDirectory()
    defer { folder.remove() }
    let path = folder.file("data")
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    let out = try runLocal(["sha256sum", path]).stdout
    return String(out.prefix(64))
}

/// Keepalives: libssh2 sends none by itself; labctl's timer must, also while a session is idle.
@Suite struct KeepaliveTests {
    @Test func anIdleSessionSendsKeepalives() async throws {
        let server = try TestSSHServer(extraConfig: "LogLevel DEBUG3")
        var options = server.options()
        options.keepaliveInterval = .seconds(2)
        let client = try await SSHClient.connect(options)
        try await Task.sleep(for: .seconds(5))
        #expect(try await client.run(RemoteCommand("echo alive")).stdoutText == "alive\n")
        await client.close()
        let log = try String(contentsOfFile: server.directory.file("sshd.log"), encoding: .utf8)
        // sshd logs each one; 5 idle seconds at a 2 s interval give at least two.
        #expect(log.components(separatedBy: "rtype keepalive@libssh2.org want_reply 0").count - 1 >= 2)
    }
}
