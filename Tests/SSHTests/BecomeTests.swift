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

        // sudo -S for the user whose sudo asks: the password answers sudo's prompt, never in argv.
        let strictClient = try await SSHClient.connect(server.options(user: strict))
        let refused = try await strictClient.run(RemoteCommand("id -un", become: .sudo))
        #expect(!refused.succeeded)
        #expect(refused.stderrText.contains("password"))
        let withPassword = try await strictClient.run(RemoteCommand(
            "id -un; cat; ps -eo args | grep -c '[p]w-\(suffix)' || true", stdin: Array("data\n".utf8),
            become: .sudoWithPassword(password)))
        #expect(withPassword.stdoutText == "root\ndata\n0\n")
        await strictClient.close()
    }

    /// The attack: with NOPASSWD sudo does not read stdin, so a password sent ahead of the input
    /// was the first line of a script for `sh -s` (run as root), or of a file's content.
    @Test func aPasswordGivenToPasswordlessSudoNeverBecomesInput() async throws {
        let users = try SudoUsers(["NOPASSWD:ALL"])
        defer { users.remove() }
        let marker = "/tmp/labctl-pw-marker-\(users.suffix)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let become = Become.sudoWithPassword("touch \(marker)")
        let server = try TestSSHServer()
        let client = try await SSHClient.connect(server.options(user: users.names[0]))

        let probe = try await client.run(RemoteCommand(arguments: ["sh", "-s"], stdin: Array("id -un; echo ok\n".utf8), become: become))
        #expect(probe.stdoutText == "root\nok\n")
        #expect(probe.stderrText == "")
        let asShell = try await client.run(RemoteCommand("sh -s", stdin: Array("echo ok\n".utf8), become: become))
        #expect(asShell.stdoutText == "ok\n")
        #expect(asShell.stderrText == "")

        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let content = Array("first line\nsecond line\n".utf8)
        let written = try await client.run(RemoteCommand(
            "cat > \(folder.file("from-stdin"))", stdin: content, timeout: .seconds(30), become: become))
        #expect(written.succeeded)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder.file("from-stdin")))) == content)
        try await client.upload(content, to: folder.file("uploaded"), become: become)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder.file("uploaded")))) == content)

        #expect(!FileManager.default.fileExists(atPath: marker))
        await client.close()
    }

    /// sudo asks: the password answers the prompt, the command gets its stdin whole, and neither
    /// the prompt nor the marker reaches the caller.
    @Test func theRightPasswordAnswersThePromptOnly() async throws {
        let users = try SudoUsers(["ALL"])
        defer { users.remove() }
        let become = Become.sudoWithPassword(users.password)
        let server = try TestSSHServer()
        let client = try await SSHClient.connect(server.options(user: users.names[0]))

        let lines = Collected()
        let result = try await client.run(RemoteCommand(
            "id -un; cat; echo to-stderr >&2; ps -eo args | grep -c '[p]w-\(users.suffix)' || true",
            stdin: Array("data\nmore data\n".utf8), become: become)) { line in
            lines.append(line, at: .zero)
        }
        #expect(result.stdoutText == "root\ndata\nmore data\n0\n")
        #expect(result.stderrText == "to-stderr\n")
        #expect(lines.lines.filter { $0.0.stream == .stderr }.map(\.0.text) == ["to-stderr"])

        let probe = try await client.run(RemoteCommand(
            arguments: ["sh", "-s"], stdin: Array("id -un\necho \"$0\" >&2\n".utf8), timeout: .seconds(30), become: become))
        #expect(probe.stdoutText == "root\n")
        #expect(probe.stderrText == "sh\n")

        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let content = Array("root's file\n".utf8)
        try await client.upload(content, to: folder.file("uploaded"), mode: 0o600, become: become)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: folder.file("uploaded")))) == content)
        await client.close()
    }

    /// sudo asks again: one attempt, then a typed error; no line of the command's input was read
    /// as another attempt, and the session stays usable.
    @Test func aWrongPasswordIsOneAttemptAndATypedError() async throws {
        let users = try SudoUsers(["ALL"])
        defer { users.remove() }
        let marker = "/tmp/labctl-wrong-marker-\(users.suffix)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let server = try TestSSHServer()
        let user = users.names[0]
        let client = try await SSHClient.connect(server.options(user: user))

        for command in [
            RemoteCommand(arguments: ["sh", "-s"], stdin: Array("touch \(marker)\n\(users.password)\n".utf8), become: .sudoWithPassword("wrong")),
            RemoteCommand("sh -s", stdin: Array("touch \(marker)\n".utf8), timeout: .seconds(30), become: .sudoWithPassword("wrong")),
        ] {
            await #expect {
                try await client.run(command)
            } throws: { error in
                guard let error = error as? SSHError, case .becomePasswordRefused(let refusedUser) = error.kind else { return false }
                return refusedUser == user && !error.description.contains("wrong")
                    && error.description == "sudo on \(user)@127.0.0.1:\(server.port) refused the password for \(user): "
                        + "check -K / LABCTL_BECOME_PASSWORD"
            }
        }
        await #expect {
            try await client.upload(Array("x\n".utf8), to: "/tmp/labctl-wrong-upload-\(users.suffix)", become: .sudoWithPassword("wrong"))
        } throws: { error in
            guard let error = error as? SSHError, case .becomePasswordRefused = error.kind else { return false }
            return error.operation == .upload
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/labctl-wrong-upload-\(users.suffix)"))

        let after = try await client.run(RemoteCommand("id -un", become: .sudoWithPassword(users.password)))
        #expect(after.stdoutText == "root\n")
        await client.close()
    }

    /// A prompt that is not sudo's own (a second factor, a PAM module's) gets neither the
    /// password nor a hang: a sudo of our own, first in the user's PATH, asks one and records
    /// what it read.
    @Test func aPromptThatIsNotSudosGetsNoPasswordAndATypedError() async throws {
        let users = try SudoUsers(["ALL"])
        defer { users.remove() }
        let user = users.names[0]
        let home = "/home/\(user)"
        let record = "\(home)/read-by-fake-sudo"
        try runLocal(["mkdir", "-p", "\(home)/bin"])
        try "PATH=\(home)/bin:$PATH\n".write(toFile: "\(home)/.bashrc", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nprintf 'Verification code: ' >&2\nIFS= read -r answer\nprintf '%s' \"$answer\" > \(record)\n"
            .write(toFile: "\(home)/bin/sudo", atomically: true, encoding: .utf8)
        try runLocal(["chmod", "755", "\(home)/bin/sudo"])
        try runLocal(["chown", "-R", "\(user):\(user)", home])

        let server = try TestSSHServer()
        let client = try await SSHClient.connect(server.options(user: user))
        #expect(try await client.run(RemoteCommand("command -v sudo")).stdoutText == "\(home)/bin/sudo\n")
        await #expect {
            try await client.run(RemoteCommand(
                arguments: ["sh", "-s"], stdin: Array("echo ok\n".utf8), become: .sudoWithPassword(users.password)))
        } throws: { error in
            guard let error = error as? SSHError, case .becomePromptUnrecognised(let prompt) = error.kind else { return false }
            return prompt == "Verification code:" && !error.description.contains(users.password)
        }
        #expect(try String(contentsOfFile: record, encoding: .utf8) == "")
        await client.close()
    }

    /// `sudo -n` that would ask says so in a way callers can recognise (to suggest -K).
    @Test func sudoWithoutAPasswordIsRecognisedWhenOneIsNeeded() async throws {
        let users = try SudoUsers(["ALL", "NOPASSWD:ALL"])
        defer { users.remove() }
        let server = try TestSSHServer()
        let strict = try await SSHClient.connect(server.options(user: users.names[0]))
        let refused = try await strict.run(RemoteCommand("id -un", become: .sudo))
        #expect(refused.sudoNeedsPassword)
        await strict.close()
        let easy = try await SSHClient.connect(server.options(user: users.names[1]))
        let failed = try await easy.run(RemoteCommand("echo no >&2; exit 1", become: .sudo))
        #expect(!failed.sudoNeedsPassword)
        await easy.close()
    }

    /// A cached sudo timestamp is the other way sudo does not read stdin. Debian's sudo keys
    /// timestamps by tty, or without one by parent process; `timestamp_type=global` makes the
    /// cache certain here.
    @Test func aCachedTimestampDoesNotTurnThePasswordIntoInput() async throws {
        let users = try SudoUsers(["ALL"], defaults: "timestamp_type=global, timestamp_timeout=5")
        defer { users.remove() }
        let marker = "/tmp/labctl-cached-marker-\(users.suffix)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let server = try TestSSHServer()
        let client = try await SSHClient.connect(server.options(user: users.names[0]))
        let first = try await client.run(RemoteCommand("id -un", become: .sudoWithPassword(users.password)))
        #expect(first.stdoutText == "root\n")
        // Any password now: sudo does not ask, so it must not be written at all.
        let cached = try await client.run(RemoteCommand(
            arguments: ["sh", "-s"], stdin: Array("echo ok\n".utf8), become: .sudoWithPassword("touch \(marker)")))
        #expect(cached.stdoutText == "ok\n")
        #expect(!FileManager.default.fileExists(atPath: marker))
        await client.close()
    }
}

/// Local users made for one test, each with its own sudoers rule, and removed with everything
/// sudo keeps for them.
struct SudoUsers {
    let suffix = String(UUID().uuidString.prefix(6)).lowercased()
    let names: [String]
    var password: String { "pw-\(suffix) it's" }
    private var sudoers: String { "/etc/sudoers.d/labctl-test-\(suffix)" }

    /// - Parameter rules: one user per rule, e.g. "ALL" (sudo asks) or "NOPASSWD:ALL".
    init(_ rules: [String], defaults: String? = nil) throws {
        let suffix = self.suffix
        names = rules.indices.map { "lbs\($0)\(suffix)" }
        do {
            var lines: [String] = []
            for (name, rule) in zip(names, rules) {
                try runLocal(["useradd", "-m", "-s", "/bin/bash", name])
                try runLocal(["chpasswd"], stdin: "\(name):\(password)\n")
                if let defaults { lines.append("Defaults:\(name) \(defaults)") }
                lines.append("\(name) ALL=(ALL) \(rule)")
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: sudoers, atomically: true, encoding: .utf8)
            try runLocal(["chmod", "0440", sudoers])
        } catch {
            remove()
            throw error
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: sudoers)
        for name in names {
            _ = try? runLocal(["userdel", "-r", name], check: false)
            try? FileManager.default.removeItem(atPath: "/run/sudo/ts/\(name)")
        }
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
