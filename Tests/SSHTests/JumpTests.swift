import Foundation
import TestSupport
import Testing
@testable import SSH

/// Connections through a jump host (ProxyJump) between real OpenSSH sshds on loopback: the far
/// host's commands and data go through the jump host's direct-tcpip channels, hosts behind one
/// jump host share its connection, and each host's key is checked against its own known_hosts.
@Suite(.serialized) struct JumpTests {
    let jump: TestSSHServer
    let far: TestSSHServer
    let other: TestSSHServer

    init() throws {
        jump = try TestSSHServer()
        far = try TestSSHServer()
        other = try TestSSHServer()
    }

    func behindJump(_ server: TestSSHServer, jump: SSHOptions? = nil) -> SSHOptions {
        var options = server.options()
        options.jumps = [jump ?? self.jump.options()]
        return options
    }

    /// The sshd connections to the jump server from this process, from the kernel's table.
    func connectionsToJump() throws -> Int {
        let table = try runLocal(["ss", "-Htn", "state", "established", "( dport = :\(jump.port) )"], check: false).stdout
        return table.split(separator: "\n").count
    }

    @Test func commandsAndDataGoThroughTheJumpHost() async throws {
        let client = try await SSHClient.connect(behindJump(far))
        let result = try await client.run(RemoteCommand("echo $SSH_CONNECTION"))
        // The far sshd sees the connection come from the jump host (loopback both), on its own port.
        #expect(result.succeeded && result.stdoutText.hasSuffix(" \(far.port)\n"), "\(result.stdoutText)")
        // Several megabytes each way through one channel.
        let data = [UInt8]((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let echoed = try await client.run(RemoteCommand("cat", stdin: data))
        #expect([UInt8](echoed.stdout) == data)
        let big = try await client.run(RemoteCommand("head -c 20000000 /dev/zero | tr '\\0' 'y'"))
        #expect(big.stdout.count == 20_000_000)
        await client.close()
    }

    /// Growing inputs and outputs through one channel: the socket pair's small buffers make
    /// libssh2 half-send packets, which must be completed before anything else is sent.
    @Test func growingTransfersBothWaysThroughOneChannel() async throws {
        let client = try await SSHClient.connect(behindJump(far))
        for i in 0..<30 {
            do {
                _ = try await client.run(RemoteCommand("echo hi"))
            } catch { Issue.record("echo \(i): \(error)"); break }
        }
        for size in [1000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000] {
            let data = [UInt8](repeating: 65, count: size)
            do {
                let echoed = try await client.run(RemoteCommand("cat", stdin: data))
                #expect(echoed.stdout.count == size)
            } catch { Issue.record("cat \(size): \(error)"); break }
        }
        for size in [1000, 100_000, 1_000_000, 20_000_000] {
            do {
                let big = try await client.run(RemoteCommand("head -c \(size) /dev/zero"))
                #expect(big.stdout.count == size)
            } catch { Issue.record("head \(size): \(error)"); break }
        }
        await client.close()
    }

    @Test func hostsBehindOneJumpHostShareItsConnectionUntilTheLastCloses() async throws {
        let first = try await SSHClient.connect(behindJump(far))
        let second = try await SSHClient.connect(behindJump(other))
        let third = try await SSHClient.connect(behindJump(far))
        for client in [first, second, third] {
            #expect(try await client.run(RemoteCommand("true")).succeeded)
        }
        #expect(try connectionsToJump() == 1)
        for client in [first, second, third] { await client.close() }
        // Gone a moment after the last host behind it closed: after the tunnel's 2 s idle grace
        // and the jump session's disconnect, which on a loaded machine (the whole suite running
        // on 2 cores) took more than 5 s once; the bound is generous, as no speed is measured.
        var left = try connectionsToJump()
        for _ in 0..<300 where left > 0 {
            try await Task.sleep(for: .milliseconds(100))
            left = try connectionsToJump()
        }
        #expect(left == 0)
        // And made again when needed.
        let again = try await SSHClient.connect(behindJump(far))
        #expect(try await again.run(RemoteCommand("true")).succeeded)
        await again.close()
    }

    @Test func theJumpHostsKeyIsCheckedLikeAnyHostsKey() async throws {
        var wrongKey = jump.options()
        let imposter = try TestSSHServer()
        // known_hosts names the jump host with another server's key.
        let line = imposter.hostPublicKeyLine.replacingOccurrences(of: "\(imposter.port)", with: "\(jump.port)")
        try (line + "\n").write(toFile: imposter.directory.file("jump_known_hosts"), atomically: true, encoding: .utf8)
        wrongKey.knownHostsPath = imposter.directory.file("jump_known_hosts")
        await #expect {
            try await SSHClient.connect(behindJump(far, jump: wrongKey))
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyMismatch = error.kind else { return false }
            return error.host.hasSuffix("127.0.0.1:\(jump.port)")
        }
        // The far host's own key is checked too, against the far host's known_hosts.
        var farWrong = behindJump(far)
        farWrong.knownHostsPath = imposter.directory.file("empty_known_hosts")
        try "".write(toFile: farWrong.knownHostsPath, atomically: true, encoding: .utf8)
        await #expect {
            try await SSHClient.connect(farWrong)
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyUnknown = error.kind else { return false }
            return error.host.hasSuffix("127.0.0.1:\(far.port)")
        }
    }

    @Test func aHostTheJumpHostCannotReachIsNamed() async throws {
        var options = far.options()
        options.endpoint.port = try TestSSHServer.freePort()
        options.jumps = [jump.options()]
        await #expect {
            try await SSHClient.connect(options)
        } throws: { error in
            guard let error = error as? SSHError, case .unreachable(let why) = error.kind else { return false }
            return why.hasPrefix("the jump host 127.0.0.1 could not connect to 127.0.0.1 port \(options.endpoint.port)")
        }
    }

    @Test func aChainOfTwoJumpHosts() async throws {
        var options = far.options()
        options.jumps = [jump.options(), other.options()]
        let client = try await SSHClient.connect(options)
        #expect(try await client.run(RemoteCommand("echo through two")).stdoutText == "through two\n")
        await client.close()
    }
}
