import Foundation
import Testing
@testable import LabSpec

@Suite("Inventory loading")
struct InventoryLoadingTests {
    @Test("the shipped inventory.json describes the local lab")
    func localLabInventory() throws {
        let inventory = try InventoryLoader.load(path: packageRoot.appendingPathComponent("inventory.json").path)
        let root = packageRoot.standardizedFileURL.path
        #expect(inventory.baseDirectory.path == root)
        #expect(inventory.domain == "wayshub.lab")
        #expect(inventory.hosts.map(\.name) == ["proxy", "app1", "app2"])
        #expect(inventory.hosts.map(\.address) == ["198.18.42.10", "198.18.42.11", "198.18.42.12"])
        #expect(inventory.hosts(withRole: "app").map(\.name) == ["app1", "app2"])
        #expect(inventory.hosts(withRole: "proxy").map(\.name) == ["proxy"])
        #expect(inventory.appHosts.map(\.name) == ["app1", "app2"])
        #expect(inventory.proxyHosts.map(\.name) == ["proxy"])

        let app1 = try #require(inventory.host(named: "app1"))
        #expect(app1.user == "ubuntu" && app1.become)
        let proxy = try #require(inventory.host(named: "proxy"))
        #expect(proxy.user == "root" && !proxy.become && proxy.port == 22)
        for host in inventory.hosts {
            #expect(host.keyPath == root + "/.labctl/id_ed25519")
        }
        #expect(inventory.ssh.knownHostsPath == root + "/.labctl/known_hosts")
        #expect(inventory.ssh.hostKeyChecking == .strict)
        #expect(inventory.lab.subnet.description == "198.18.42.0/24")
        #expect(inventory.lab.bridge == "labctl0")

        let app = try #require(inventory.app)
        #expect(app.source == .path(root + "/app/wayshub-standin"))
        #expect(app.node == .apt)
        #expect(app.port == 3000)
        #expect(inventory.nginx.confPath == "/etc/nginx/dumbways/my.reverse-proxy.conf")
        #expect(inventory.isLocalLab)
    }

    @Test("the real-VM example uses nvm, GitHub and a sudo user")
    func vmExampleInventory() throws {
        let inventory = try InventoryLoader.load(path: packageRoot.appendingPathComponent("inventory.vms.example.json").path)
        #expect(inventory.hosts.map(\.address) == ["192.168.204.10", "192.168.204.52", "192.168.204.238"])
        for host in inventory.hosts {
            #expect(host.user == "ubuntu")
            #expect(host.become)
            #expect(host.keyPath == homeDirectory + "/.ssh/id_ed25519")
        }
        #expect(inventory.ssh.knownHostsPath == homeDirectory + "/.ssh/known_hosts")
        let app = try #require(inventory.app)
        #expect(app.source == .git(url: "https://github.com/dumbwaysdev/wayshub-frontend.git", ref: "main"))
        #expect(app.node == .nvm(version: "16", nvmVersion: "0.39.7"))
        // Real VMs are not lab hosts: their addresses lie outside the lab's subnet.
        #expect(inventory.hostsOutsideLabSubnet.count == 3)
        #expect(!inventory.isLocalLab)
    }

    @Test("relative paths are resolved against the inventory's folder, ~ against HOME")
    func pathResolution() throws {
        let inventory = try parse(inventoryJSON(hosts: """
            { "name": "a", "address": "10.0.0.1", "roles": ["x"], "key": "keys/id_a" },
            { "name": "b", "address": "10.0.0.2", "roles": ["x"], "key": "../shared/id_b" },
            { "name": "c", "address": "10.0.0.3", "roles": ["x"], "key": "~/keys/id_c" },
            { "name": "d", "address": "10.0.0.4", "roles": ["x"], "key": "/etc/labctl/id_d" },
            { "name": "e", "address": "10.0.0.5", "roles": ["x"] },
            { "name": "f", "address": "10.0.0.6", "roles": ["x"], "agent": true }
            """, extra: """
            , "ssh": { "known_hosts": "./state/known_hosts" }, "lab": { "cache": "cache" }
            """))
        #expect(inventory.hosts.map(\.keyPath) == [
            "/srv/lab-inventories/keys/id_a",
            "/srv/shared/id_b",
            homeDirectory + "/keys/id_c",
            "/etc/labctl/id_d",
            homeDirectory + "/.ssh/id_ed25519",
            nil,
        ])
        #expect(inventory.hosts.map(\.agent) == [false, false, false, false, false, true])
        #expect(inventory.ssh.knownHostsPath == "/srv/lab-inventories/state/known_hosts")
        #expect(inventory.lab.cachePath == "/srv/lab-inventories/cache")
    }

    @Test("load resolves against the file's own folder, wherever labctl runs")
    func loadFromAnotherFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labspec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("my-lab.json")
        try Data(inventoryJSON(extra: #", "defaults": { "key": "id_lab" }"#).utf8).write(to: file)

        let inventory = try InventoryLoader.load(path: file.path)
        let expectedFolder = folder.standardizedFileURL.path
        #expect(inventory.baseDirectory.path == expectedFolder)
        #expect(inventory.file?.path == file.standardizedFileURL.path)
        #expect(inventory.hosts.allSatisfy { $0.keyPath == expectedFolder + "/id_lab" })
    }

    @Test("jump hosts: inventory names, addresses, chains, none; what the inventory gives itself is marked")
    func jumpHosts() throws {
        let inventory = try parse(inventoryJSON(hosts: """
            { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
            { "name": "app1", "address": "198.18.42.11", "roles": ["app"], "user": "ubuntu" },
            { "name": "app2", "address": "198.18.42.12", "roles": ["app"], "jump": "me@[fd00::1]:2222,bastion.example:22,proxy" },
            { "name": "app3", "address": "198.18.42.13", "roles": ["app"], "jump": "none" }
            """, extra: #", "defaults": { "jump": "proxy", "port": 22 }, "ssh": { "config": "none" }"#))
        let hosts = Dictionary(uniqueKeysWithValues: inventory.hosts.map { ($0.name, $0) })
        #expect(hosts["proxy"]?.jump == [], "the jump host defaults name is reached directly")
        #expect(hosts["app1"]?.jump == [.host("proxy")])
        #expect(hosts["app2"]?.jump == [.address(user: "me", host: "fd00::1", port: 2222), .address(user: nil, host: "bastion.example", port: 22), .host("proxy")])
        #expect(hosts["app2"]?.jump?.map(\.description) == ["me@[fd00::1]:2222", "bastion.example:22", "proxy"])
        #expect(hosts["app3"]?.jump == [])
        #expect(hosts["app1"]?.given == [.user, .port])
        #expect(hosts["proxy"]?.given == [.port])
        #expect(inventory.ssh.configPath == nil)
        #expect(inventory.ssh.given == [])
        let plain = try parse(inventoryJSON(extra: #", "ssh": { "known_hosts": "kh", "connect_timeout": 5 }"#))
        #expect(plain.ssh.configPath == InventoryPaths.expandTilde("~/.ssh/config"))
        #expect(plain.ssh.given == [.knownHosts, .connectTimeout])
        #expect(plain.hosts.allSatisfy { $0.jump == nil && $0.given == [] })
    }

    @Test("defaults apply to hosts that do not say otherwise")
    func defaultsApply() throws {
        let inventory = try parse(inventoryJSON(hosts: """
            { "name": "a", "address": "10.0.0.1", "roles": ["x"] },
            { "name": "b", "address": "10.0.0.2", "roles": ["x"], "user": "root", "port": 2222, "become": false }
            """, extra: """
            , "defaults": { "user": "ubuntu", "port": 2200, "become": true, "agent": true }
            """))
        let a = inventory.hosts[0], b = inventory.hosts[1]
        #expect((a.user, a.port, a.become, a.agent, a.keyPath) == ("ubuntu", 2200, true, true, nil))
        #expect((b.user, b.port, b.become, b.agent) == ("root", 2222, false, true))
    }

    @Test("a ping-only inventory needs no app, domain, proxy or app host, and gets every default")
    func minimalInventory() throws {
        let inventory = try parse(#"{ "hosts": [ { "name": "box", "address": "box.example.net", "roles": ["web"] } ] }"#)
        #expect(inventory.name == "lab")
        #expect(inventory.domain == nil)
        #expect(inventory.app == nil)
        let host = try #require(inventory.hosts.first)
        #expect((host.port, host.user, host.become, host.agent) == (22, "root", false, false))
        #expect(host.upstream == InventoryHost.Upstream(weight: 1, backup: false, maxFails: 1, failTimeout: "5s"))
        #expect(inventory.ssh == Inventory.SSHSettings(knownHostsPath: homeDirectory + "/.ssh/known_hosts",
                                                       hostKeyChecking: .strict, connectTimeout: .seconds(10),
                                                       configPath: homeDirectory + "/.ssh/config", given: []))
        #expect(inventory.lab == Inventory.LabSettings())
        #expect(inventory.nginx == Inventory.NginxSettings(directory: "dumbways", confName: "my.reverse-proxy.conf",
                                                           method: .roundRobin, listenPort: 80))
    }

    @Test("app defaults: wayshub-frontend from GitHub with Node 16 through nvm")
    func appDefaults() throws {
        let inventory = try parse(inventoryJSON(extra: #", "domain": "wayshub.lab", "app": {}"#))
        let app = try #require(inventory.app)
        #expect(app == Inventory.AppSettings(
            name: "wayshub", port: 3000, directory: "/opt/wayshub", user: "root",
            source: .git(url: "https://github.com/dumbwaysdev/wayshub-frontend.git", ref: "main"),
            node: .nvm(version: "16", nvmVersion: "0.39.7")))
    }

    @Test("tarball Node, upstream options, vars and IPv6 addresses are carried through")
    func richHost() throws {
        let sum = String(repeating: "AB", count: 32)
        let inventory = try parse(inventoryJSON(hosts: """
            { "name": "proxy", "address": "fd00::10", "roles": ["proxy"] },
            { "name": "app1", "address": "app1.example.net", "roles": ["app", "blue"],
              "vars": { "color": "blue", "replicas": 2 },
              "upstream": { "weight": 3, "backup": true, "max_fails": 0, "fail_timeout": "1m30s" } }
            """, extra: """
            , "domain": "shop.example", "nginx": { "method": "least_conn", "listen": 8080 },
            "app": { "node": { "install": "tarball", "version": "v18.19.0", "url": "https://example.com/node.tar.xz", "sha256": "\(sum)" } }
            """))
        let app1 = inventory.hosts[1]
        #expect(app1.roles == ["app", "blue"])
        #expect(app1.vars == ["color": .string("blue"), "replicas": .integer(2)])
        #expect(app1.upstream == InventoryHost.Upstream(weight: 3, backup: true, maxFails: 0, failTimeout: "1m30s"))
        #expect(inventory.app?.node == .tarball(url: "https://example.com/node.tar.xz", sha256: sum.lowercased(), version: "18.19.0"))
        #expect(inventory.nginx.method == .leastConn)
        #expect(inventory.nginx.listenPort == 8080)
        #expect(inventory.roles == ["proxy", "app", "blue"])
    }

    @Test("an explicit null means the default")
    func nullMeansDefault() throws {
        let inventory = try parse(inventoryJSON(extra: #", "defaults": { "port": null }, "lab": null"#))
        #expect(inventory.hosts.allSatisfy { $0.port == 22 })
    }
}
