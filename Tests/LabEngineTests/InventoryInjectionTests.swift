import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// Hostile values in every inventory field the shipped playbooks use. Each is either refused
/// when the inventory loads, by a problem that names that field, or accepted; every inventory
/// that loads is then run through the shipped provision and deploy playbooks in check mode
/// against a real sshd (check mode still runs every step's probe, `unless` guards included:
/// where a value once reached a root shell). No marker ever appears.
@Suite(.serialized) struct InventoryInjectionTests {
    static let root = ShippedPlaybookTests.root

    /// JSON paths into the inventory (`app.node.url`, `hosts.1.name`) and the node install
    /// method each one needs to be used at all.
    static let fields: [(path: [String], node: String?)] = [
        (["name"], nil), (["domain"], nil), (["app", "name"], nil), (["app", "directory"], nil), (["app", "user"], nil),
        (["app", "source", "git"], nil), (["app", "source", "ref"], nil), (["app", "node", "version"], "nvm"),
        (["app", "node", "nvm_version"], "nvm"), (["app", "node", "url"], "tarball"), (["app", "node", "sha256"], "tarball"),
        (["app", "node", "version"], "tarball"), (["nginx", "dir"], nil), (["nginx", "conf"], nil), (["hosts", "1", "name"], nil),
        (["hosts", "1", "address"], nil), (["hosts", "1", "user"], nil), (["hosts", "1", "roles", "0"], nil),
        (["hosts", "1", "upstream", "fail_timeout"], nil), (["defaults", "user"], nil),
        (["app", "node", "mirror"], "nvm"), (["app", "node", "nvm_repo"], "nvm"), (["app", "node", "mirror"], "tarball"),
        (["app", "npm_registry"], nil),
    ]

    /// The inventory as JSON objects, its hosts on the test sshd.
    static func base(server: TestSSHServer, node: String?) -> [String: Any] {
        var app: [String: Any] = ["name": "wayshub", "port": 3000, "directory": "/opt/wayshub", "user": "root",
                                  "source": ["git": "https://example.invalid/app.git", "ref": "main"]]
        switch node {
        case "nvm": app["node"] = ["install": "nvm", "version": "16", "nvm_version": "0.39.7"]
        case "tarball":
            app["node"] = ["install": "tarball", "version": "16.20.2", "url": "https://example.invalid/node.tar.xz",
                           "sha256": String(repeating: "a", count: 64)]
        default: app["node"] = ["install": "apt"]
        }
        return [
            "name": "wayshub-lab", "domain": "wayshub.lab",
            "defaults": ["user": "root", "port": server.port, "key": server.clientKeyPath, "become": false],
            "ssh": ["known_hosts": server.knownHostsPath, "host_key_checking": "strict"],
            "hosts": [
                ["name": "proxy", "address": "127.0.0.1", "roles": ["proxy"]],
                ["name": "app1", "address": "localhost", "roles": ["app"],
                 "upstream": ["weight": 1, "max_fails": 1, "fail_timeout": "5s"]],
            ],
            "app": app, "nginx": ["dir": "dumbways", "conf": "my.reverse-proxy.conf"],
        ]
    }

    /// `object` with the value at `path` replaced.
    static func setting(_ object: Any, _ path: ArraySlice<String>, to value: String) -> Any {
        guard let key = path.first else { return value }
        if var list = object as? [Any], let index = Int(key), list.indices.contains(index) {
            list[index] = setting(list[index], path.dropFirst(), to: value)
            return list
        }
        var map = object as? [String: Any] ?? [:]
        map[key] = setting(map[key] ?? [String: Any](), path.dropFirst(), to: value)
        return map
    }

    /// Runs the shipped playbooks in check mode; the reports, one per playbook.
    static func checkRun(_ inventory: Inventory, state: String) async throws -> [RunReport] {
        var reports: [RunReport] = []
        for name in ["provision.yml", "deploy.yml"] {
            let path = root.appendingPathComponent("playbooks/" + name).path
            let playbook = try PlaybookParser.parse(fileAt: path)
            let runner = PlaybookRunner(
                inventory: inventory, options: RunOptions(
                    playbookDirectory: (path as NSString).deletingLastPathComponent, check: true, stateDirectory: state))
            let issues = runner.validate(playbook)
            #expect(issues.isEmpty, "\(name): \(issues.map(\.description))")
            if issues.isEmpty { reports.append(await runner.run(playbook)) }
        }
        return reports
    }

    @Test func everyFieldRefusesOrSafelyCarriesHostileValues() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        // The app host is the same sshd under another name (the inventory refuses one address twice).
        let known = try String(contentsOfFile: server.knownHostsPath, encoding: .utf8)
        try (known + known.replacingOccurrences(of: "[127.0.0.1]", with: "[localhost]"))
            .write(toFile: server.knownHostsPath, atomically: true, encoding: .utf8)
        let markers = folder.file("markers")
        try FileManager.default.createDirectory(atPath: markers, withIntermediateDirectories: true)

        // The harness itself: the unmodified inventory loads and both playbooks probe every host.
        let inventoryPath = folder.file("inventory.json")
        func write(_ object: Any) throws {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: inventoryPath))
        }
        try write(Self.base(server: server, node: "nvm"))
        let baseline = try await Self.checkRun(try InventoryLoader.load(path: inventoryPath), state: folder.file("state"))
        #expect(baseline.count == 2)
        for report in baseline {
            #expect(report.hosts.count == 2 && report.hosts.allSatisfy { $0.status != .unreachable && $0.roundTrips >= 1 })
        }

        var refused = 0
        var ran = 0
        for (index, payload) in InjectionCorpusTests.payloads.enumerated() {
            let marker = markers + "/m\(index)"
            let value = payload.replacingOccurrences(of: "@M@", with: marker)
            for field in Self.fields {
                try write(Self.setting(Self.base(server: server, node: field.node), field.path[...], to: value))
                let fieldName = field.path.reduce("") { name, part in
                    Int(part) != nil ? "\(name)[\(part)]" : name.isEmpty ? part : "\(name).\(part)"
                }
                do {
                    let inventory = try InventoryLoader.load(path: inventoryPath)
                    ran += 1
                    _ = try await Self.checkRun(inventory, state: folder.file("state"))
                } catch let error as InventoryError {
                    refused += 1
                    #expect(error.problems.contains { $0.path == fieldName },
                            "payload \(index) in \(fieldName): \(error.problems.map(\.description))")
                    for problem in error.problems {
                        #expect(!problem.message.contains("Error Domain") && problem.message.utf8.count < 2_000,
                                "payload \(index) in \(fieldName): \(problem.description.prefix(300))")
                    }
                }
                #expect(!FileManager.default.fileExists(atPath: marker), "payload \(index) in \(fieldName) ran on the host")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: markers).isEmpty)
        #expect(refused > 1_000, "refused \(refused), ran \(ran)")
    }
}
