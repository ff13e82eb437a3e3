import Foundation
import SSH
import TestSupport
import Testing

/// Non-root logins: password authentication and sudo (`become`), with real local users.
@Suite(.serialized) struct BecomeTests {
    /// Two users made for the test and removed afterwards: one with passwordless sudo (like
    /// Multipass's `ubuntu`), one whose sudo asks for its password.
    @Test func passwordLoginAndBothKindsOfSudo() async throws {
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        let easy = "lbe\(suffix)"
        let strict = "lbp\(suffix)"
        let password = "pw-\(suffix) it's"
        let sudoers = "/etc/sudoers.d/labctl-test-\(suffix)"
        defer {
            try? FileManager.default.removeItem(atPath: sudoers)
            _ = try? runLocal(["userdel", "-r", easy], check: false)
            _ = try? runLocal(["userdel", "-r", strict], check: false)
        }
        for user in [easy, strict] {
            try runLocal(["useradd", "-m", "-s", "/bin/bash", user])
            try runLocal(["chpasswd"], stdin: "\(user):\(password)\n")
        }
        try "\(easy) ALL=(ALL) NOPASSWD:ALL\n\(strict) ALL=(ALL) ALL\n".write(toFile: sudoers, atomically: true, encoding: .utf8)
        try runLocal(["chmod", "0440", sudoers])

        let server = try TestSSHServer(extraConfig: "PasswordAuthentication yes")

        // Password authentication (meant for installing a key the first time).
        let byPassword = try await SSHClient.connect(server.options(user: strict, credentials: [.password(password)]))
        #expect(try await byPassword.run(RemoteCommand("id -un")).stdoutText == "\(strict)\n")
        await byPassword.close()
        await #expect(throws: SSHError.self) {
            _ = try await SSHClient.connect(server.options(user: strict, credentials: [.password("wrong")]))
        }

        // sudo -n for the passwordless user; the command, env and stdin all reach root's side.
        let easyClient = try await SSHClient.connect(server.options(user: easy))
        #expect(try await easyClient.run(RemoteCommand("id -un")).stdoutText == "\(easy)\n")
        let asRoot = try await easyClient.run(RemoteCommand(
            "id -un; echo \"$GREETING\"; cat", stdin: Array("from stdin\n".utf8), environment: ["GREETING": "hi there"],
            become: .sudo))
        #expect(asRoot.stdoutText == "root\nhi there\nfrom stdin\n")
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try runLocal(["chmod", "700", folder.path])
        try await easyClient.upload(Array("root only\n".utf8), to: folder.file("secret"), mode: 0o600, become: .sudo)
        #expect(try String(contentsOfFile: folder.file("secret"), encoding: .utf8) == "root only\n")
        await easyClient.close()

        // sudo -S for the user whose sudo asks: the password goes on stdin, never in argv.
        let strictClient = try await SSHClient.connect(server.options(user: strict))
        let refused = try await strictClient.run(RemoteCommand("id -un", become: .sudo))
        #expect(!refused.succeeded)
        #expect(refused.stderrText.contains("password"))
        let withPassword = try await strictClient.run(RemoteCommand(
            "id -un; cat; ps -eo args | grep -c '[p]w-\(suffix)' || true", stdin: Array("data\n".utf8),
            become: .sudoWithPassword(password)))
        #expect(withPassword.stdoutText == "root\ndata\n0\n")
        let wrong = try await strictClient.run(RemoteCommand("id -un", become: .sudoWithPassword("wrong")))
        #expect(!wrong.succeeded)
        await strictClient.close()
    }
}

/// Several hosts at once from Swift concurrency, each with its own session.
@Suite struct ParallelTests {
    @Test func parallelSessionsKeepTheirOutputsApart() async throws {
        let servers = try (0..<3).map { _ in try TestSSHServer() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, server) in servers.enumerated() {
                group.addTask {
                    let client = try await SSHClient.connect(server.options())
                    let seen = Collected()
                    for round in 0..<20 {
                        let result = try await client.run(RemoteCommand(
                            "for i in 1 2 3; do echo host\(index)-round\(round)-$i; done")) { line in
                            seen.append(line, at: .zero)
                        }
                        #expect(result.stdoutText == (1...3).map { "host\(index)-round\(round)-\($0)\n" }.joined())
                    }
                    // stdout only: the login shell's own noise on stderr (pyenv's rehash lock on a
                    // busy machine) is not the command's output.
                    let output = seen.lines.filter { $0.0.stream == .stdout }
                    #expect(output.allSatisfy { $0.0.text.hasPrefix("host\(index)-") })
                    #expect(output.count == 60)
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
    }
}
