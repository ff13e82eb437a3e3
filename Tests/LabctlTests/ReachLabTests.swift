import Foundation
import LabEngine
import TestSupport
import Testing

/// Issue 15 on a local lab, with real sshds: app servers that accept SSH only from the proxy
/// (a firewall rule in their network namespace) reached through `jump: proxy` and through an
/// SSH config's ProxyJump, a wrong jump-host key refused, and `labctl keys install` onto a
/// user that has only a password.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct ReachLabTests {
    let lab: LabHarness

    init() throws {
        lab = try LabHarness(name: "reach", prefix: "198.18.33", bridge: "labreach0")
    }

    var proxy: String { "\(lab.prefix).10" }

    /// The lab's inventory with `extraHost` fields on the app servers and `ssh` settings of its own.
    func writeInventory(appFields: String = "", ssh: String = "", file: String = "inventory.json") throws {
        let ssh = ssh.isEmpty ? "" : ", " + ssh
        try """
            { "name": "\(lab.name)", "domain": "wayshub.test",
              "defaults": { "key": "id_ed25519" },
              "ssh": { "known_hosts": "known_hosts", "connect_timeout": 3\(ssh) },
              "lab": { "subnet": "\(lab.prefix).0/24", "bridge": "\(lab.bridge)" },
              "hosts": [
                { "name": "proxy", "address": "\(proxy)", "roles": ["proxy"] },
                { "name": "app1", "address": "\(lab.prefix).11", "roles": ["app"]\(appFields) },
                { "name": "app2", "address": "\(lab.prefix).12", "roles": ["app"]\(appFields) }
              ],
              "app": { "directory": "/opt/wayshub", "source": { "path": "\(lab.appCopy)" }, "node": { "install": "apt" } },
              "nginx": { "dir": "dumbways" }
            }
            """.write(toFile: lab.folder.file(file), atomically: true, encoding: .utf8)
    }

    /// SSH to the app servers only from the proxy: a rule in each one's network namespace.
    func onlyFromTheProxy() throws {
        for host in ["app1", "app2"] {
            try runLocal(["ip", "netns", "exec", "labctl-\(lab.name)-\(host)", "nft", "-f", "-"], stdin: """
                table inet labctl_test {
                    chain input {
                        type filter hook input priority 0; policy accept;
                        tcp dport 22 ip saddr != \(proxy) drop
                    }
                }
                """)
        }
    }

    @Test func appServersBehindTheProxyAreReachedThroughIt() async throws {
        defer {
            lab.down()
            lab.folder.remove()
        }
        try runLocal(["cp", "-r", LabHarness.repository.appendingPathComponent("app/wayshub-standin").path, lab.appCopy])
        try writeInventory()
        lab.down()
        let up = try lab.labctl(["lab", "up", "-i", lab.inventory])
        try #require(up.status == 0, "lab up: \(up.stdout)")
        try onlyFromTheProxy()

        // Directly, the app servers do not answer any more.
        let direct = try lab.labctl(["ping", "-i", lab.inventory])
        #expect(direct.status == 3, "\(direct.stdout)")

        // Through `jump: proxy`: the whole lab, provisioned, deployed and verified.
        try writeInventory(appFields: #", "jump": "proxy""#)
        let upThrough = try lab.labctl(["up", "-i", lab.inventory, "--playbooks", lab.playbooks], seconds: 900)
        #expect(upThrough.status == 0, "\(upThrough.stdout)")

        // Through a config file's ProxyJump, the inventory saying nothing of jumps; the app
        // servers are named by config aliases.
        let config = lab.folder.file("ssh_config")
        try """
            Host web-*
                User root
            Host web-1
                HostName \(lab.prefix).11
            Host web-2
                HostName \(lab.prefix).12
            Host web-* !web-0
                ProxyJump root@\(proxy)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        try writeInventory(ssh: #""config": "ssh_config""#, file: "aliases.json")
        var aliases = try String(contentsOfFile: lab.folder.file("aliases.json"), encoding: .utf8)
        aliases = aliases.replacingOccurrences(of: "\"address\": \"\(lab.prefix).11\"", with: "\"address\": \"web-1\"")
            .replacingOccurrences(of: "\"address\": \"\(lab.prefix).12\"", with: "\"address\": \"web-2\"")
        try aliases.write(toFile: lab.folder.file("aliases.json"), atomically: true, encoding: .utf8)
        let viaConfig = try lab.labctl(["ping", "-i", lab.folder.file("aliases.json")])
        #expect(viaConfig.status == 0, "\(viaConfig.stdout)")
        #expect(viaConfig.stdout.contains(lab.prefix + ".11"), "the alias resolves to its HostName: \(viaConfig.stdout)")

        // A wrong key for the jump host is refused, as OpenSSH refuses it, and names it.
        let knownHosts = lab.folder.file("known_hosts")
        let real = try String(contentsOfFile: knownHosts, encoding: .utf8)
        let appKey = try #require(real.split(separator: "\n").first { $0.hasPrefix("\(lab.prefix).11 ") })
        let forged = real.split(separator: "\n").filter { !$0.hasPrefix("\(proxy) ") }.map(String.init)
            + [appKey.replacingOccurrences(of: "\(lab.prefix).11 ", with: "\(proxy) ")]
        try (forged.joined(separator: "\n") + "\n").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        try writeInventory(appFields: #", "jump": "proxy""#)
        let refused = try lab.labctl(["ping", "app1", "-i", lab.inventory])
        #expect(refused.status == 3, "\(refused.stdout)")
        #expect(refused.stdout.contains("REFUSED: the host key changed") && refused.stdout.contains(proxy), "\(refused.stdout)")
        try real.write(toFile: knownHosts, atomically: true, encoding: .utf8)
    }

    @Test func keysInstallPutsTheKeyOnAPasswordOnlyUser() async throws {
        defer {
            lab.down()
            lab.folder.remove()
        }
        try runLocal(["cp", "-r", LabHarness.repository.appendingPathComponent("app/wayshub-standin").path, lab.appCopy])
        try writeInventory()
        lab.down()
        let up = try lab.labctl(["lab", "up", "-i", lab.inventory])
        try #require(up.status == 0, "lab up: \(up.stdout)")
        // A user with a password and no key, allowed to log in with it.
        try lab.inside("app2", """
            useradd -m -s /bin/bash student
            echo 'student:s3cret word' | chpasswd
            printf 'Match User student\\n    PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/student.conf
            systemctl reload ssh || systemctl reload sshd
            """)
        let inventory = lab.folder.file("student.json")
        try """
            { "name": "\(lab.name)",
              "ssh": { "known_hosts": "known_hosts", "connect_timeout": 20 },
              "hosts": [ { "name": "app2", "address": "\(lab.prefix).12", "roles": ["app"], "user": "student", "key": "student_key" } ] }
            """.write(toFile: inventory, atomically: true, encoding: .utf8)

        // Without a password: the key is made, and labctl says how to give the password.
        let noPassword = try lab.labctl(["keys", "install", "-i", inventory])
        #expect(noPassword.status == 3, "\(noPassword.stdout)")
        #expect(noPassword.stdout.contains("run again with -k"), "\(noPassword.stdout)")
        #expect(FileManager.default.fileExists(atPath: lab.folder.file("student_key.pub")))

        let install = try lab.labctl(["keys", "install", "-i", inventory], environment: ["LABCTL_SSH_PASSWORD": "s3cret word"])
        #expect(install.status == 0, "\(install.stdout)")
        #expect(install.stdout.contains("installed"), "\(install.stdout)")
        let modes = try lab.inside("app2", "stat -c '%a %U' /home/student/.ssh /home/student/.ssh/authorized_keys").stdout
        #expect(modes == "700 student\n600 student\n", "\(modes)")
        let key = try String(contentsOfFile: lab.folder.file("student_key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try lab.inside("app2", "cat /home/student/.ssh/authorized_keys").stdout == key + "\n")

        // Key login works without the password; a second install changes nothing.
        let ping = try lab.labctl(["ping", "-i", inventory])
        #expect(ping.status == 0 && ping.stdout.contains("logged in as student"), "\(ping.stdout)")
        let again = try lab.labctl(["keys", "install", "-i", inventory])
        #expect(again.status == 0 && again.stdout.contains("logs in already; nothing changed"), "\(again.stdout)")
        #expect(try lab.inside("app2", "wc -l < /home/student/.ssh/authorized_keys").stdout.trimmingCharacters(in: .whitespaces) == "1\n")

        // A wrong password is a login that failed: unreachable, saying so (sshd answers a wrong
        // password only after its failure delay, hence the longer connect_timeout here).
        try lab.inside("app2", "rm /home/student/.ssh/authorized_keys")
        let wrong = try lab.labctl(["keys", "install", "-i", inventory], environment: ["LABCTL_SSH_PASSWORD": "wrong"])
        #expect(wrong.status == 3, "\(wrong.stdout)")
        #expect(wrong.stdout.contains("refused the password for student"), "\(wrong.stdout)")
    }
}
