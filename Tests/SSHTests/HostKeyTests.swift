import Foundation
import SSH
import TestSupport
import Testing

/// known_hosts handling against a real sshd: strict, accept-new, mismatch, revoked, hashed.
@Suite struct HostKeyTests {
    let server: TestSSHServer

    init() throws {
        server = try TestSSHServer()
    }

    var serverFingerprint: String {
        get throws {
            let out = try runLocal(["ssh-keygen", "-lf", server.directory.file("ssh_host_ed25519_key.pub")]).stdout
            return String(out.split(separator: " ")[1])
        }
    }

    func writeKnownHosts(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: server.knownHostsPath, atomically: true, encoding: .utf8)
    }

    func otherEd25519PublicKey() throws -> String {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try runLocal(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", folder.file("k")])
        let parts = try String(contentsOfFile: folder.file("k.pub"), encoding: .utf8).split(separator: " ")
        return "\(parts[0]) \(parts[1])"
    }

    @Test func strictRefusesAnUnknownHostAndNamesTheFingerprint() async throws {
        try writeKnownHosts(["# nothing about this host"])
        let fingerprint = try serverFingerprint
        await #expect {
            _ = try await SSHClient.connect(server.options())
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyUnknown(let type, let shown, _, _) = error.kind else { return false }
            return type == "ssh-ed25519" && shown == fingerprint && error.description.contains("accept-new")
        }
        // Nothing was written in strict mode.
        #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8) == "# nothing about this host\n")
    }

    @Test func acceptNewRecordsOneLineThenStrictAccepts() async throws {
        try FileManager.default.removeItem(atPath: server.knownHostsPath)
        let client = try await SSHClient.connect(server.options(policy: .acceptNew))
        await client.close()
        let recorded = try String(contentsOfFile: server.knownHostsPath, encoding: .utf8)
        #expect(recorded == server.hostPublicKeyLine + "\n")
        let again = try await SSHClient.connect(server.options(policy: .strict))
        await again.close()
        #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8) == recorded)
    }

    @Test func mismatchIsRefusedEvenWithAcceptNew() async throws {
        let other = try otherEd25519PublicKey()
        try writeKnownHosts(["# a comment", "[127.0.0.1]:\(server.port) \(other)"])
        let fingerprint = try serverFingerprint
        for policy in HostKeyPolicy.allCases {
            await #expect {
                _ = try await SSHClient.connect(server.options(policy: policy))
            } throws: { error in
                guard let error = error as? SSHError,
                    case .hostKeyMismatch(_, let presented, _, let expected, let path, let line, _) = error.kind
                else { return false }
                return presented == fingerprint && expected != fingerprint && expected.hasPrefix("SHA256:")
                    && path == server.knownHostsPath && line == 2 && error.description.contains("ssh-keygen -R")
            }
        }
        #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8).components(separatedBy: "\n").count == 3)
    }

    /// OpenSSH (hostfile.c check_hostkeys_by_key_or_type) counts a listed key of another type as
    /// a changed key, under StrictHostKeyChecking=yes and accept-new alike; this test used to
    /// expect "unknown", and accept-new to record the second key.
    @Test func anEntryOfATypeTheHostDoesNotOfferIsAChange() async throws {
        try writeKnownHosts([
            "[127.0.0.1]:\(server.port) ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
        ])
        let before = try String(contentsOfFile: server.knownHostsPath, encoding: .utf8)
        for policy in HostKeyPolicy.allCases {
            await #expect {
                _ = try await SSHClient.connect(server.options(policy: policy))
            } throws: { error in
                guard let error = error as? SSHError,
                    case .hostKeyMismatch(let type, _, let expectedType, _, _, let line, _) = error.kind
                else { return false }
                return type == "ssh-ed25519" && expectedType == "ecdsa-sha2-nistp256" && line == 1
                    && error.description.contains("offers no ecdsa-sha2-nistp256 key")
            }
        }
        #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8) == before)
    }

    @Test func revokedKeyIsRefused() async throws {
        try writeKnownHosts([server.hostPublicKeyLine, "@revoked " + server.hostPublicKeyLine])
        await #expect {
            _ = try await SSHClient.connect(server.options(policy: .acceptNew))
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyRevoked(_, _, let line, _) = error.kind else { return false }
            return line == 2
        }
    }

    @Test func hashedEntriesAndMalformedLinesAreHandled() async throws {
        try writeKnownHosts([server.hostPublicKeyLine])
        try runLocal(["ssh-keygen", "-H", "-f", server.knownHostsPath])
        let hashed = try String(contentsOfFile: server.knownHostsPath, encoding: .utf8)
        #expect(hashed.contains("|1|"))
        #expect(!hashed.contains("127.0.0.1"))
        // libssh2's own file reader would stop at this line and miss the entry after it.
        try writeKnownHosts(["this line is not a known_hosts line", "@cert-authority * ssh-ed25519 AAAA", hashed])
        let client = try await SSHClient.connect(server.options())
        let result = try await client.run(RemoteCommand("echo ok"))
        #expect(result.stdoutText == "ok\n")
        #expect(client.knownHostsWarnings.count == 2)
        #expect(client.knownHostsWarnings.first?.hasPrefix("known_hosts \(server.knownHostsPath) line 1: ") == true)
        await client.close()
    }

    @Test func theErrorForAnUnknownHostNamesTheIgnoredLines() async throws {
        try writeKnownHosts(["# fine", "[127.0.0.1]:\(server.port) ssh-ed25519 AAAA%%%%"])
        await #expect {
            _ = try await SSHClient.connect(server.options(policy: .strict))
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyUnknown(_, _, _, let warnings) = error.kind else { return false }
            return warnings == ["known_hosts \(server.knownHostsPath) line 2: the key is not valid base64; ignored"]
                && error.description.contains("line 2: the key is not valid base64; ignored")
        }
    }

    @Test func theErrorForAChangedKeyNamesTheIgnoredLines() async throws {
        let other = try otherEd25519PublicKey()
        try writeKnownHosts(["[127.0.0.1]:\(server.port)", "[127.0.0.1]:\(server.port) \(other)"])
        await #expect {
            _ = try await SSHClient.connect(server.options(policy: .acceptNew))
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyMismatch(_, _, _, _, _, let line, let warnings) = error.kind
            else { return false }
            return line == 2 && warnings.count == 1 && error.description.contains("line 1: too few fields")
        }
    }

    @Test func aKnownHostsPathThatIsADirectoryIsAnError() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var options = server.options(policy: .acceptNew)
        options.knownHostsPath = folder.path
        await #expect {
            _ = try await SSHClient.connect(options)
        } throws: { error in
            guard let error = error as? SSHError, case .localFile(let path, let reason) = error.kind else { return false }
            return path == folder.path && reason.contains("it is a directory") && error.operation == .hostKey
        }
    }

    @Test func aMissingFileIsNoEntries() async throws {
        try FileManager.default.removeItem(atPath: server.knownHostsPath)
        await #expect {
            _ = try await SSHClient.connect(server.options(policy: .strict))
        } throws: { error in
            guard let error = error as? SSHError, case .hostKeyUnknown = error.kind else { return false }
            return true
        }
        #expect(!FileManager.default.fileExists(atPath: server.knownHostsPath))
    }
}

/// Failures that happen before SSH starts.
@Suite struct ConnectErrorTests {
    func options(host: String, port: Int) -> SSHOptions {
        SSHOptions(
            endpoint: SSHEndpoint(host: host, port: port, user: "root"),
            credentials: [.agent(socketPath: nil)], knownHostsPath: "/dev/null",
            connectTimeout: .seconds(2), handshakeTimeout: .seconds(1))
    }

    @Test func unresolvableName() async throws {
        await #expect {
            _ = try await SSHClient.connect(options(host: "no-such-host.invalid", port: 22))
        } throws: { error in
            guard let error = error as? SSHError, case .nameNotResolved = error.kind else { return false }
            return error.operation == .connect
        }
    }

    @Test func refusedPort() async throws {
        let port = try TestSSHServer.freePort()
        await #expect {
            _ = try await SSHClient.connect(options(host: "127.0.0.1", port: port))
        } throws: { error in
            guard let error = error as? SSHError, case .connectionRefused = error.kind else { return false }
            return true
        }
    }

    @Test func silentServerTimesOutInTheHandshake() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        await #expect {
            _ = try await SSHClient.connect(options(host: "127.0.0.1", port: listener.port))
        } throws: { error in
            guard let error = error as? SSHError, case .timeout = error.kind else { return false }
            return error.operation == .handshake
        }
    }
}

/// A TCP listener that accepts nothing and says nothing: a server that hangs.
struct SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = fd
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = listen(fd, 8)
                _ = getsockname(fd, $0, &length)
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(fd) }
}

/// accept-new from many sessions at once into one known_hosts file.
@Suite struct SharedKnownHostsTests {
    @Test func parallelAcceptNewKeepsEveryLine() async throws {
        let servers = try (0..<6).map { _ in try TestSSHServer() }
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let shared = folder.file("ssh/known_hosts")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers {
                group.addTask {
                    var options = server.options(policy: .acceptNew)
                    options.knownHostsPath = shared
                    let client = try await SSHClient.connect(options)
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        let lines = try String(contentsOfFile: shared, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(Set(lines) == Set(servers.map(\.hostPublicKeyLine)))
        #expect(lines.count == servers.count)
    }
}
