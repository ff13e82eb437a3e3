import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// The inventory completed by an OpenSSH client config: the config fills in what the inventory
/// does not set itself, aliases resolve to their HostName, ProxyJump becomes the jump chain,
/// and what labctl cannot follow (a ProxyCommand) is refused naming the host and the file.
@Suite struct SSHConfigApplicationTests {
    let scratch = Scratch()

    func inventory(hosts: String, ssh: String = "") throws -> Inventory {
        let config = scratch.file("ssh_config")
        try """
            { "name": "cfg", "ssh": { "config": "\(config)"\(ssh) },
              "hosts": [ \(hosts) ] }
            """.write(toFile: scratch.file("inventory.json"), atomically: true, encoding: .utf8)
        return try InventoryLoader.load(path: scratch.file("inventory.json"))
    }

    func config(_ text: String) {
        scratch.write("ssh_config", text)
        scratch.write("keys/id_web", "not really a key\n")
    }

    @Test func theConfigFillsInWhatTheInventoryLeavesOpen() throws {
        config("""
            Host web1
                HostName 192.0.2.11
                User student
                Port 2222
                IdentityFile \(scratch.file("keys/id_web"))
                ProxyJump admin@bastion:2200,web2
                StrictHostKeyChecking accept-new
                ConnectTimeout 7
                UserKnownHostsFile \(scratch.file("kh")) \(scratch.file("kh2"))
                ForwardAgent yes
                ServerAliveInterval 30
            Host web2
                HostName 192.0.2.12
                User jumper
            Host bastion
                HostName 198.51.100.1
            """)
        let loaded = try inventory(hosts: """
            { "name": "a", "address": "web1", "roles": ["x"] },
            { "name": "b", "address": "web1", "port": 2200, "user": "root", "key": "mine", "roles": ["x"], "jump": "none" }
            """)
        let applied = try SSHConfigApplication.apply(to: loaded)
        let a = applied.inventory.hosts[0], b = applied.inventory.hosts[1]
        #expect(a.address == "192.0.2.11" && a.user == "student" && a.port == 2222)
        #expect(a.keyPath == scratch.file("keys/id_web"))
        #expect(a.jump == [.address(user: "admin", host: "198.51.100.1", port: 2200), .address(user: "jumper", host: "192.0.2.12", port: nil)])
        #expect(a.fromSSHConfig.hostKeyChecking == .acceptNew && a.fromSSHConfig.connectTimeout == .seconds(7))
        #expect(a.fromSSHConfig.knownHostsPath == scratch.file("kh"))
        // What the inventory sets itself wins; the alias still resolves to its HostName.
        #expect(b.address == "192.0.2.11" && b.user == "root" && b.port == 2200 && b.keyPath == scratch.file("mine") && b.jump == [])
        #expect(applied.notes.first == "a: \(scratch.file("ssh_config")) sets forwardagent, serveraliveinterval for web1, which labctl does not use", "\(applied.notes)")

        let options = InventoryContext.sshOptions(a, applied.inventory)
        #expect(options.endpoint == SSHEndpoint(host: "192.0.2.11", port: 2222, user: "student"))
        #expect(options.hostKeyPolicy == .acceptNew && options.connectTimeout == .seconds(7))
        #expect(options.jumps.map(\.endpoint) == [SSHEndpoint(host: "198.51.100.1", port: 2200, user: "admin"), SSHEndpoint(host: "192.0.2.12", port: 22, user: "jumper")])
    }

    @Test func aProxyCommandOrABadLineIsRefusedNamingTheHostAndTheFile() throws {
        config("Host web1\n    ProxyCommand nc %h %p\n")
        let loaded = try inventory(hosts: #"{ "name": "a", "address": "web1", "roles": ["x"] }"#)
        #expect(throws: SSHConfigProblem.self) { try SSHConfigApplication.apply(to: loaded) }
        do {
            _ = try SSHConfigApplication.apply(to: loaded)
        } catch {
            #expect(error.description == "a: \(scratch.file("ssh_config")) gives web1 a ProxyCommand, which labctl does not run; use ProxyJump there, or \"jump\" in the inventory")
        }
        config("Host *\n    Prot 22\n")
        do {
            _ = try SSHConfigApplication.apply(to: loaded)
            Issue.record("a misspelt keyword was accepted")
        } catch {
            #expect(error.description.hasPrefix("a: \(scratch.file("ssh_config")) line 2: "), "\(error.description)")
            #expect(error.description.hasSuffix("set the inventory's ssh.config to \"none\")"), "\(error.description)")
        }
    }

    /// The connection labctl makes for each alias is the one `ssh -G` computes from the same
    /// config: address, port, user, key and jump hosts.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh"), "needs OpenSSH's ssh"))
    func theConnectionIsTheOneSSHComputes() throws {
        scratch.write("keys/id_a", "x\n")
        scratch.write("keys/id_b", "x\n")
        scratch.write("conf.d/10-web.conf", """
            Host web-*
                User deploy
                IdentityFile \(scratch.file("keys/id_missing"))
                IdentityFile \(scratch.file("keys/id_a"))
            """)
        config("""
            Include \(scratch.file("conf.d"))/*.conf
            Host web-1
                HostName 192.0.2.21
                Port 2201
            Host web-2 db
                HostName %h.example.test
                IdentityFile \(scratch.file("keys/id_b"))
                ProxyJump jumper@web-1:2222
            Host db
                User postgres
            Match host *.example.test
                Port 2202
            Host *
                User fallback
                Port 2299
            """)
        let aliases = ["web-1", "web-2", "db", "elsewhere"]
        let loaded = try inventory(hosts: aliases.enumerated().map { #"{ "name": "h\#($0.offset)", "address": "\#($0.element)", "roles": ["x"] }"# }.joined(separator: ","))
        let applied = try SSHConfigApplication.apply(to: loaded).inventory
        for (alias, host) in zip(aliases, applied.hosts) {
            let result = try runLocal(["/usr/bin/ssh", "-G", "-F", scratch.file("ssh_config"), alias], check: false)
            try #require(result.status == 0, "\(result.stderr)")
            var ssh: [String: [String]] = [:]
            for line in result.stdout.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                ssh[parts[0], default: []].append(parts.count > 1 ? parts[1] : "")
            }
            let options = InventoryContext.sshOptions(host, applied)
            #expect(options.endpoint.host == ssh["hostname"]?.first, "\(alias)")
            #expect(String(options.endpoint.port) == ssh["port"]?.first, "\(alias)")
            #expect(options.endpoint.user == ssh["user"]?.first, "\(alias)")
            // labctl logs in with the first of ssh's identity files that exists.
            let existing = (ssh["identityfile"] ?? []).first { FileManager.default.fileExists(atPath: $0) }
            if let existing {
                #expect(options.credentials.contains { if case .keyFile(let path, _) = $0 { return path == existing }; return false }, "\(alias): \(options.credentials)")
            }
            let jump = ssh["proxyjump"]?.first
            #expect(options.jumps.map { "\($0.endpoint.user)@\($0.endpoint.host):\($0.endpoint.port)" }.first == jump.map { _ in "jumper@192.0.2.21:2222" }, "\(alias): \(String(describing: jump))")
        }
    }

    @Test func noneIgnoresTheConfig() throws {
        config("Host *\n    User nobody\n")
        let loaded = try inventory(hosts: #"{ "name": "a", "address": "web1", "roles": ["x"] }"#).with { $0.ssh.configPath = nil }
        #expect(try SSHConfigApplication.apply(to: loaded).inventory == loaded)
    }
}

extension Inventory {
    func with(_ change: (inout Inventory) -> Void) -> Inventory {
        var copy = self
        change(&copy)
        return copy
    }
}
