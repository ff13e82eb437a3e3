import Foundation
import SSH
import TestSupport
import Testing

/// Authentication against a real sshd: keys, passphrases, RSA, ssh-agent, passwords.
@Suite final class AuthTests {
    let server: TestSSHServer
    let keys: TemporaryDirectory

    init() throws {
        server = try TestSSHServer()
        keys = try TemporaryDirectory(prefix: "labctl-keys")
    }

    deinit { keys.remove() }

    func makeKey(_ name: String, type: String = "ed25519", passphrase: String = "", authorize: Bool = true, extra: [String] = [])
        throws -> String
    {
        let path = keys.file(name)
        try runLocal(["ssh-keygen", "-q", "-t", type] + extra + ["-N", passphrase, "-f", path])
        if authorize { try server.addAuthorizedKey(String(contentsOfFile: path + ".pub", encoding: .utf8)) }
        return path
    }

    func connect(_ credentials: [SSHCredential]) async throws -> SSHClient {
        try await SSHClient.connect(server.options(credentials: credentials))
    }

    func failure(_ credentials: [SSHCredential]) async -> SSHError? {
        do {
            let client = try await connect(credentials)
            await client.close()
            return nil
        } catch {
            return error as? SSHError
        }
    }

    @Test func ecdsaKeysInOpenSSHAndPEMForm() async throws {
        for extra in [[], ["-m", "PEM"]] {
            let path = try makeKey("ecdsa\(extra.count)", type: "ecdsa", extra: extra)
            let client = try await connect([.keyFile(path: path, passphrase: nil)])
            #expect(try await client.run(RemoteCommand("id -un")).stdoutText == "root\n")
            await client.close()
        }
    }

    @Test func aKeyTheServerDoesNotKnowIsRefused() async throws {
        let path = try makeKey("stranger", authorize: false)
        let error = try #require(await failure([.keyFile(path: path, passphrase: nil)]))
        guard case .authenticationFailed(let reasons) = error.kind else {
            Issue.record("expected authenticationFailed, got \(error)")
            return
        }
        #expect(reasons == ["the server refused the key \(path)"])
        #expect(error.operation == .authenticate)
    }

    @Test func aMissingKeyFileIsNamed() async throws {
        let error = try #require(await failure([.keyFile(path: keys.file("nope"), passphrase: nil)]))
        guard case .localFile(let path, _) = error.kind else {
            Issue.record("expected localFile, got \(error)")
            return
        }
        #expect(path == keys.file("nope"))
    }

    @Test func passphraseProtectedKey() async throws {
        let path = try makeKey("locked", passphrase: "correct horse")
        let client = try await connect([.keyFile(path: path, passphrase: "correct horse")])
        await client.close()

        let wrong = try #require(await failure([.keyFile(path: path, passphrase: "wrong")]))
        #expect(wrong.description.contains("wrong passphrase"))
        let missing = try #require(await failure([.keyFile(path: path, passphrase: nil)]))
        #expect(missing.description.contains("LABCTL_KEY_PASSPHRASE"))
    }

    @Test func rsaKeyGetsTheSentenceThatSaysWhatToDo() async throws {
        let path = try makeKey("rsa", type: "rsa", extra: ["-b", "2048"])
        let error = try #require(await failure([.keyFile(path: path, passphrase: nil)]))
        guard case .rsaKeyUnsupported(let keyPath) = error.kind else {
            Issue.record("expected rsaKeyUnsupported, got \(error)")
            return
        }
        #expect(keyPath == path)
        #expect(error.description.contains("run `labctl keys install -k`, which makes it and installs it"))
    }

    @Test func laterCredentialsAreTriedAfterARefusal() async throws {
        let stranger = try makeKey("stranger2", authorize: false)
        let client = try await connect([
            .keyFile(path: stranger, passphrase: nil), .keyFile(path: server.clientKeyPath, passphrase: nil),
        ])
        await client.close()
    }

    @Test func agentIdentities() async throws {
        let socket = keys.file("agent.sock")
        let started = try runLocal(["ssh-agent", "-a", socket, "-s"]).stdout
        let pid = try #require(started.firstMatch(of: /SSH_AGENT_PID=(\d+)/).map { String($0.1) })
        // SIGKILL: the agent inherits the test process's blocked signal mask (SIGTERM blocked)
        // and keeps it, so a plain kill left one agent running per test run.
        defer { _ = try? runLocal(["kill", "-KILL", pid], check: false) }
        let key = try makeKey("agent-key", authorize: true)
        try runLocal(["ssh-add", key], environment: ["SSH_AUTH_SOCK": socket])
        let client = try await connect([.agent(socketPath: socket)])
        #expect(try await client.run(RemoteCommand("echo via agent")).stdoutText == "via agent\n")
        await client.close()

        // An agent holding only an RSA key gets the RSA sentence too.
        try runLocal(["ssh-add", "-D"], environment: ["SSH_AUTH_SOCK": socket])
        let rsa = try makeKey("agent-rsa", type: "rsa", extra: ["-b", "2048"])
        try runLocal(["ssh-add", rsa], environment: ["SSH_AUTH_SOCK": socket])
        let error = try #require(await failure([.agent(socketPath: socket)]))
        guard case .rsaKeyUnsupported = error.kind else {
            Issue.record("expected rsaKeyUnsupported, got \(error)")
            return
        }
    }
}
