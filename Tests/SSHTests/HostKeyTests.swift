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

    /// Each session reads the file again under the lock before appending, so sessions that all
    /// found the host unknown record it once.
    @Test func parallelAcceptNewToOneHostRecordsItOnce() async throws {
        let server = try TestSSHServer()
        try FileManager.default.removeItem(atPath: server.knownHostsPath)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let client = try await SSHClient.connect(server.options(policy: .acceptNew))
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8) == server.hostPublicKeyLine + "\n")
    }
}

/// labctl and the OpenSSH client judge the same known_hosts files against the same sshd alike:
/// both accept, both refuse, and under accept-new both leave the same file behind.
@Suite(.serialized) struct HostKeyTestsAgainstOpenSSH {
    enum Outcome: String {
        /// Connected, file unchanged.
        case accepted
        /// Connected and appended the host's key (accept-new only).
        case recorded
        case refused
    }

    enum Host: Sendable {
        case both, ed25519Only, ecdsaOnly
    }

    /// The servers and keys a case's lines are made of.
    struct Fixture: Sendable {
        let both: TestSSHServer
        let ed25519Only: TestSSHServer
        let ecdsaOnly: TestSSHServer
        /// "ssh-ed25519 AAAA..." of keys no server has.
        let otherEd25519: String
        let otherECDSA: String
        let folder: TemporaryDirectory

        func server(_ host: Host) -> TestSSHServer {
            switch host {
            case .both: return both
            case .ed25519Only: return ed25519Only
            case .ecdsaOnly: return ecdsaOnly
            }
        }
    }

    struct Case: Sendable {
        var name: String
        var host: Host = .both
        /// The file's lines for a server: "[127.0.0.1]:port" is `name`, its keys by type.
        var lines: @Sendable (_ name: String, _ keys: [String: String], _ fixture: Fixture) throws -> [String]
        var strict: Outcome
        var acceptNew: Outcome
    }

    static func publicKey(_ type: String, in folder: TemporaryDirectory) throws -> String {
        let path = folder.file("other-\(type)")
        try runLocal(["ssh-keygen", "-q", "-t", type, "-N", "", "-f", path])
        let parts = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ")
        return "\(parts[0]) \(parts[1])"
    }

    /// The line as `ssh-keygen -H` hashes it.
    static func hashed(_ line: String, in folder: TemporaryDirectory) throws -> String {
        let path = folder.file("to-hash-\(UUID().uuidString.prefix(6))")
        try (line + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        try runLocal(["ssh-keygen", "-H", "-f", path])
        return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .newlines)
    }

    /// Each character below U+0100 as one byte: "é" becomes the Latin-1 byte 0xE9, not UTF-8.
    static func latin1(_ text: String) -> Data {
        Data(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
    }

    static let cases: [Case] = [
        Case(name: "nothing known", lines: { _, _, _ in ["# nothing about this host"] },
             strict: .refused, acceptNew: .recorded),
        Case(name: "a Latin-1 comment before the entry", lines: { n, k, _ in ["# café au lait", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a Latin-1 comment and a changed key",
             lines: { n, _, f in ["# café au lait", "\(n) \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "Latin-1 in another host's line",
             lines: { n, k, f in ["othér.example \(f.otherEd25519) commént", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "Latin-1 in another host's line and a changed key",
             lines: { n, _, f in ["othér.example \(f.otherECDSA) commént", "\(n) \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "malformed lines before a good one",
             lines: { n, k, _ in
                 let blob = k["ed25519"]!.split(separator: " ")[1]
                 return [
                     "\(n) ssh-ed25519 AAAA!notbase64", "\(n) ssh-ed25519", n, "\(n) ecdsa-sha2-nistp256 \(blob)",
                     "@bogus \(n) \(k["ed25519"]!)", "\(n) \(k["ed25519"]!)",
                 ]
             },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "only malformed lines",
             lines: { n, k, _ in
                 let blob = k["ed25519"]!.split(separator: " ")[1]
                 return ["\(n) ssh-ed25519 AAAA!notbase64", "\(n) ecdsa-sha2-nistp256 \(blob)"]
             },
             strict: .refused, acceptNew: .recorded),
        Case(name: "a hashed entry", lines: { n, k, f in [try hashed("\(n) \(k["ed25519"]!)", in: f.folder)] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a hashed entry with another key", lines: { n, _, f in [try hashed("\(n) \(f.otherEd25519)", in: f.folder)] },
             strict: .refused, acceptNew: .refused),
        Case(name: "a revoked key", lines: { n, k, _ in ["\(n) \(k["ed25519"]!)", "@revoked \(n) \(k["ed25519"]!)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "a key revoked by a wildcard line", lines: { n, k, _ in ["@revoked * \(k["ed25519"]!)", "\(n) \(k["ed25519"]!)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "another key revoked", lines: { n, k, f in ["@revoked \(n) \(f.otherEd25519)", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "the bare name for a port other than 22", lines: { _, k, _ in ["127.0.0.1 \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "the bare name with another key", lines: { _, _, f in ["127.0.0.1 \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .recorded),
        Case(name: "another port's entry", lines: { _, _, f in ["[127.0.0.1]:1 \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .recorded),
        Case(name: "wildcards", lines: { _, k, _ in ["[127.0.0.?]:* \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a star", lines: { _, k, _ in ["* \(k["ecdsa"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "the host among other names", lines: { n, k, _ in ["a.example,\(n),b.example \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a negated pattern excludes the line", lines: { n, k, _ in ["[*]:*,!\(n) \(k["ed25519"]!)"] },
             strict: .refused, acceptNew: .recorded),
        // Excluded as [127.0.0.1]:port, but the bare name 127.0.0.1 that OpenSSH tries next matches "*".
        Case(name: "a negated pattern and the bare-name retry", lines: { n, k, _ in ["*,!\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a negated pattern excludes a changed key",
             lines: { n, k, f in ["!\(n),* \(f.otherEd25519)", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "known only by ed25519", lines: { n, k, _ in ["\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "known only by ecdsa", lines: { n, k, _ in ["\(n) \(k["ecdsa"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "known by both", lines: { n, k, _ in ["\(n) \(k["ecdsa"]!)", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "a changed ed25519 key", lines: { n, _, f in ["\(n) \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "a changed ecdsa key", lines: { n, _, f in ["\(n) \(f.otherECDSA)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "a changed ecdsa key beside the right ed25519 key",
             lines: { n, k, f in ["\(n) \(f.otherECDSA)", "\(n) \(k["ed25519"]!)"] },
             strict: .accepted, acceptNew: .accepted),
        Case(name: "known only as ed25519, which the host does not offer", host: .ecdsaOnly,
             lines: { n, _, f in ["\(n) \(f.otherEd25519)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "known only as ecdsa, which the host does not offer", host: .ed25519Only,
             lines: { n, _, f in ["\(n) \(f.otherECDSA)"] },
             strict: .refused, acceptNew: .refused),
        Case(name: "nothing known, ecdsa-only host", host: .ecdsaOnly, lines: { _, _, _ in [] },
             strict: .refused, acceptNew: .recorded),
        Case(name: "only a @cert-authority line", lines: { n, k, _ in ["@cert-authority \(n) \(k["ed25519"]!)"] },
             strict: .refused, acceptNew: .recorded),
        Case(name: "CRLF line ends", lines: { n, k, _ in ["\(n) \(k["ed25519"]!)\r"] },
             strict: .accepted, acceptNew: .accepted),
    ]

    func labctl(_ server: TestSSHServer, file: String, policy: HostKeyPolicy) async -> (accepted: Bool, error: String) {
        var options = server.options(policy: policy)
        options.knownHostsPath = file
        do {
            let client = try await SSHClient.connect(options)
            await client.close()
            return (true, "")
        } catch {
            return (false, error.description)
        }
    }

    func openssh(_ server: TestSSHServer, file: String, policy: HostKeyPolicy) throws -> (accepted: Bool, error: String) {
        let result = try runLocal([
            "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(file)",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=\(policy == .strict ? "yes" : "accept-new")",
            "-o", "CheckHostIP=no", "-o", "UpdateHostKeys=no", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
            "-i", server.clientKeyPath, "-p", String(server.port), "root@127.0.0.1", "true",
        ], check: false)
        return (result.status == 0, result.stderr)
    }

    @Test func labctlJudgesEveryFileAsOpenSSHDoes() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let fixture = Fixture(
            both: try TestSSHServer(hostKeyTypes: ["ed25519", "ecdsa"]),
            ed25519Only: try TestSSHServer(hostKeyTypes: ["ed25519"]),
            ecdsaOnly: try TestSSHServer(hostKeyTypes: ["ecdsa"]),
            otherEd25519: try Self.publicKey("ed25519", in: folder),
            otherECDSA: try Self.publicKey("ecdsa", in: folder),
            folder: folder)
        for (index, testCase) in Self.cases.enumerated() {
            let server = fixture.server(testCase.host)
            let name = "[127.0.0.1]:\(server.port)"
            let keys = server.hostPublicKeyLines.mapValues { $0.split(separator: " ").dropFirst().joined(separator: " ") }
            let lines = try testCase.lines(name, keys, fixture)
            let contents = Self.latin1(lines.map { $0 + "\n" }.joined())
            for policy in HostKeyPolicy.allCases {
                let expected = policy == .strict ? testCase.strict : testCase.acceptNew
                let ours = folder.file("labctl-\(index)-\(policy.rawValue)")
                let theirs = folder.file("openssh-\(index)-\(policy.rawValue)")
                try contents.write(to: URL(fileURLWithPath: ours))
                try contents.write(to: URL(fileURLWithPath: theirs))
                let labctl = await labctl(server, file: ours, policy: policy)
                let openssh = try openssh(server, file: theirs, policy: policy)
                let oursAfter = try Data(contentsOf: URL(fileURLWithPath: ours))
                let theirsAfter = try Data(contentsOf: URL(fileURLWithPath: theirs))
                let label = "\(testCase.name), \(policy.rawValue)"
                func outcome(_ accepted: Bool, _ after: Data) -> Outcome {
                    accepted ? (after == contents ? .accepted : .recorded) : .refused
                }
                #expect(labctl.accepted == openssh.accepted,
                        "\(label): labctl \(labctl.accepted ? "accepts" : "refuses: \(labctl.error)"), OpenSSH \(openssh.accepted ? "accepts" : "refuses: \(openssh.error)")")
                #expect(oursAfter == theirsAfter,
                        "\(label): the files differ afterwards:\nlabctl:\n\(String(decoding: oursAfter, as: UTF8.self))\nOpenSSH:\n\(String(decoding: theirsAfter, as: UTF8.self))")
                #expect(outcome(labctl.accepted, oursAfter) == expected, "\(label): labctl: \(labctl.error)")
                #expect(outcome(openssh.accepted, theirsAfter) == expected, "\(label): OpenSSH: \(openssh.error)")
                if !labctl.accepted { #expect(oursAfter == contents, "\(label): labctl refused but wrote the file") }
            }
        }
    }
}
