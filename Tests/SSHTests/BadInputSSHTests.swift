import Foundation
import SSH
import TestSupport
import Testing

/// Issue 12 in the SSH module: any Duration is safe, a silent listener is given up at the
/// configured limit, and a key that cannot be used does not stop a password from being tried.
@Suite struct BadInputSSHTests {
    /// A TCP listener on loopback that never accepts or speaks: the kernel completes the TCP
    /// handshake from its backlog, so only the SSH handshake can hang.
    final class SilentListener {
        let fd: Int32
        let port: Int

        init() throws {
            let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, length) }
            }
            guard bound == 0, listen(listening, 8) == 0 else {
                close(listening)
                throw POSIXError(.EADDRINUSE)
            }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
            }
            fd = listening
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(fd) }
    }

    func options(port: Int, connectTimeout: Duration, handshakeTimeout: Duration = .seconds(15), credentials: [SSHCredential] = [.password("x")])
        throws -> SSHOptions
    {
        let folder = try TemporaryDirectory(prefix: "labctl-silent")
        try "".write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        return SSHOptions(
            endpoint: SSHEndpoint(host: "127.0.0.1", port: port, user: "root"), credentials: credentials,
            knownHostsPath: folder.file("known_hosts"), connectTimeout: connectTimeout, handshakeTimeout: handshakeTimeout)
    }

    func failure(_ options: SSHOptions) async -> SSHError? {
        do {
            let client = try await SSHClient.connect(options)
            await client.close()
            return nil
        } catch {
            return error
        }
    }

    @Test func aListenerThatNeverSpeaksIsGivenUpAtTheConnectTimeout() async throws {
        let listener = try SilentListener()
        // The handshake's own limit is longer: the connect timeout bounds the whole connection.
        let error = try #require(await failure(options(port: listener.port, connectTimeout: .seconds(1), handshakeTimeout: .seconds(600))))
        guard case .timeout(let limit) = error.kind else {
            Issue.record("expected a timeout, got \(error)")
            return
        }
        #expect(error.operation == .handshake)
        #expect(limit == .seconds(1))
        #expect(error.summary == "timed out after 1 s while the SSH handshake")
    }

    @Test func theShorterHandshakeTimeoutIsTheOneNamed() async throws {
        let listener = try SilentListener()
        let error = try #require(await failure(options(port: listener.port, connectTimeout: .seconds(600), handshakeTimeout: .seconds(1))))
        guard case .timeout(let limit) = error.kind else {
            Issue.record("expected a timeout, got \(error)")
            return
        }
        #expect(limit == .seconds(1))
    }

    /// Durations that overflowed before (Int.max seconds, far past Int32 milliseconds) are
    /// clamped: the call fails for its real reason, it does not trap.
    @Test func hugeDurationsDoNotTrap() async throws {
        let server = try TestSSHServer()
        let error = try #require(await failure(options(
            port: server.port, connectTimeout: .seconds(Int64.max), handshakeTimeout: .seconds(Int64.max), credentials: [])))
        // Any failure is fine (known_hosts is empty); reaching here without a trap is the test.
        #expect(error.operation == .hostKey)
        let client = try await SSHClient.connect(server.options())
        defer { Task { await client.close() } }
        for timeout: Duration in [.seconds(Int64.max), .seconds(9_300_000_000_000_000), .seconds(86_401), .milliseconds(1)] {
            let result = try await client.run(RemoteCommand("echo ok", timeout: timeout))
            #expect(result.stdoutText == "ok\n", "\(timeout)")
        }
        await client.close()
    }

    @Test func aMissingKeyFileStillLetsThePasswordBeTried() async throws {
        let server = try TestSSHServer()
        let folder = try TemporaryDirectory(prefix: "labctl-nokey")
        defer { folder.remove() }
        var options = server.options(credentials: [.keyFile(path: folder.file("nope"), passphrase: nil), .password("not-it")])
        options.connectTimeout = .seconds(10)
        let error = try #require(await failure(options))
        guard case .authenticationFailed(let reasons) = error.kind else {
            Issue.record("expected authenticationFailed, got \(error)")
            return
        }
        #expect(reasons.count == 2, "\(reasons)")
        #expect(reasons.first?.contains("no such key file") == true)
        #expect(reasons.last == "the server refused the password for root")
    }

    @Test func aKeyThatIsAFolderOrBinaryIsNamedForWhatItIs() async throws {
        let server = try TestSSHServer()
        let folder = try TemporaryDirectory(prefix: "labctl-badkey")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.file("dir"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder.file("binary"), contents: Data([0x7F, 0x45, 0x4C, 0x46, 0x00, 0xFF, 0xFE]))
        for (name, expected) in [("dir", "is a folder, not a private key file"), ("binary", "is not a private key (binary data)")] {
            let error = try #require(await failure(server.options(credentials: [.keyFile(path: folder.file(name), passphrase: nil)])))
            guard case .localFile(let path, let reason) = error.kind else {
                Issue.record("expected localFile, got \(error)")
                continue
            }
            #expect(path == folder.file(name))
            #expect(reason.contains(expected), "\(reason)")
            #expect(!reason.contains("permissions?"))
        }
    }
}
