import Foundation
import TestSupport
import Testing

/// Secrets through the built labctl, on a real sshd and real sudo: a key passphrase and a sudo
/// password, given to hosts whose sudo asks for it and to hosts whose sudo does not. Neither
/// ever shows in argv (`ps` on the host while steps run), in -v/--vv output, in --json, as a
/// line of a script (the password is a shell command that would make a marker file) or in a
/// file written on the host.
@Suite(.serialized) struct SecretsCLITests {
    @Test func secretsNeverLeave() throws {
        let suffix = String(UUID().uuidString.prefix(6)).lowercased()
        let easy = "lse\(suffix)"  // passwordless sudo
        let strict = "lsp\(suffix)"  // sudo asks for the password
        let folder = try TemporaryDirectory(prefix: "labctl-secrets")
        let marker = folder.file("marker")
        let password = "touch \(marker)"
        let passphrase = "phrase-\(suffix) $(touch \(marker))"
        let sudoers = "/etc/sudoers.d/labctl-secrets-\(suffix)"
        defer {
            try? FileManager.default.removeItem(atPath: sudoers)
            _ = try? runLocal(["userdel", "-r", easy], check: false)
            _ = try? runLocal(["userdel", "-r", strict], check: false)
            folder.remove()
        }
        for user in [easy, strict] {
            try runLocal(["useradd", "-m", "-s", "/bin/sh", user])
            try runLocal(["chpasswd"], stdin: "\(user):\(password)\n")
        }
        try "\(easy) ALL=(ALL) NOPASSWD:ALL\n\(strict) ALL=(ALL) ALL\n".write(toFile: sudoers, atomically: true, encoding: .utf8)
        try runLocal(["chmod", "0440", sudoers])
        try runLocal(["chmod", "0777", folder.path])

        let server = try TestSSHServer()
        defer { server.stop() }
        let key = folder.file("id_locked")
        try runLocal(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "locked", "-f", key])
        try server.addAuthorizedKey(try String(contentsOfFile: key + ".pub", encoding: .utf8))
        let known = server.hostPublicKeyLine + "\n" + server.hostPublicKeyLine.replacingOccurrences(of: "[127.0.0.1]", with: "[localhost]") + "\n"
        try known.write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        try """
            { "name": "secrets", "ssh": { "known_hosts": "known_hosts" },
              "defaults": { "port": \(server.port), "key": "\(key)", "become": true },
              "hosts": [
                { "name": "easy", "address": "127.0.0.1", "user": "\(easy)", "roles": ["web"] },
                { "name": "strict", "address": "localhost", "user": "\(strict)", "roles": ["web"] } ] }
            """.write(toFile: folder.file("inventory.json"), atomically: true, encoding: .utf8)
        // A file written through sudo (its content on stdin), a probe script on stdin, and a
        // look at every process's arguments while labctl's sessions are open.
        try """
            steps:
              - name: a file as root
                hosts: web
                become: true
                file: { path: "\(folder.path)/{{host.name}}.txt", content: "hello {{host.name}}\\n" }
              - name: every process's arguments
                hosts: web
                become: true
                command: "ps -eo args > \(folder.path)/{{host.name}}.ps"
            """.write(toFile: folder.file("site.yml"), atomically: true, encoding: .utf8)

        func labctl(becomePassword: String?) throws -> (LocalResult, String) {
            let report = folder.file("report.json")
            try? FileManager.default.removeItem(atPath: report)
            var environment = ProcessInfo.processInfo.environment.filter { $0.key != "LABCTL_BECOME_PASSWORD" }
            environment["LABCTL_KEY_PASSPHRASE"] = passphrase
            if let becomePassword { environment["LABCTL_BECOME_PASSWORD"] = becomePassword }
            let result = try runLocal(
                [labctlExecutablePath, "run", "-i", folder.file("inventory.json"), folder.file("site.yml"), "-v", "--vv",
                 "--json", report, "--state-dir", folder.file("state")],
                environment: environment, check: false)
            return (result, (try? String(contentsOfFile: report, encoding: .utf8)) ?? "")
        }
        func expectNoSecret(_ text: String, _ what: String) {
            #expect(!text.contains(password) && !text.contains("phrase-\(suffix)"), "a secret in \(what)")
        }

        let (good, goodReport) = try labctl(becomePassword: password)
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(!goodReport.isEmpty)
        for host in ["easy", "strict"] {
            #expect((try? String(contentsOfFile: folder.file("\(host).txt"), encoding: .utf8)) == "hello \(host)\n")
            let processes = try String(contentsOfFile: folder.file("\(host).ps"), encoding: .utf8)
            #expect(processes.contains("ps -eo args"), "the look at the processes ran")
            expectNoSecret(processes, "the arguments of a process on \(host)")
        }
        expectNoSecret(good.stdout + good.stderr, "labctl's output")
        expectNoSecret(goodReport, "the --json report")
        #expect(!FileManager.default.fileExists(atPath: marker), "a secret ran as a command")

        // A wrong password: the host whose sudo asks fails with one sentence naming the way to
        // give it; the other host is fine; still no secret anywhere.
        let wrong = "wrong \(suffix) $(touch \(marker))"
        let (bad, badReport) = try labctl(becomePassword: wrong)
        #expect(bad.status == 2, "\(bad.stdout)\(bad.stderr)")
        #expect((bad.stdout + bad.stderr).contains("refused the password for \(strict)"), "\(bad.stdout)\(bad.stderr)")
        #expect((bad.stdout + bad.stderr).contains("LABCTL_BECOME_PASSWORD"))
        for text in [bad.stdout + bad.stderr, badReport] {
            expectNoSecret(text, "the wrong password's run")
            #expect(!text.contains("wrong \(suffix)"), "the wrong password was shown")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "a secret ran as a command")

        // No password at all: the host whose sudo asks for one fails, and the way to give it
        // (-K) is said under the recap too, where a user looks first.
        let (none, _) = try labctl(becomePassword: nil)
        #expect(none.status == 2, "\(none.stdout)\(none.stderr)")
        let afterRecap = none.stdout.components(separatedBy: "RECAP").last ?? ""
        #expect(afterRecap.contains("pass -K (or set LABCTL_BECOME_PASSWORD)"), "\(none.stdout)")
        for entry in try FileManager.default.subpathsOfDirectory(atPath: folder.path) where !entry.hasPrefix("id_locked") {
            guard let data = FileManager.default.contents(atPath: folder.file(entry)) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            expectNoSecret(text, entry)
        }
    }
}
