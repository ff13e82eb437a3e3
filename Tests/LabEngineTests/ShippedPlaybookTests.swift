import Foundation
import LabSpec
import Testing
@testable import LabEngine

/// The repository's playbooks, parsed and validated against its inventories: every template
/// variable, template file, target and upload folder resolves, for every host.
@Suite struct ShippedPlaybookTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var playbooks: [String] {
        let directory = root.appendingPathComponent("playbooks").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".yml") }.sorted()
    }

    @Test(arguments: ["inventory.json", "inventory.vms.example.json"])
    func everyPlaybookValidates(inventoryFile: String) throws {
        try #require(!Self.playbooks.isEmpty)
        let inventory = try InventoryLoader.load(path: Self.root.appendingPathComponent(inventoryFile).path)
        for name in Self.playbooks {
            let path = Self.root.appendingPathComponent("playbooks/" + name).path
            let playbook = try PlaybookParser.parse(fileAt: path)
            let runner = PlaybookRunner(inventory: inventory, options: RunOptions(playbookDirectory: (path as NSString).deletingLastPathComponent))
            let issues = runner.validate(playbook)
            #expect(issues.isEmpty, "\(inventoryFile) \(name): \(issues.map(\.description))")
        }
    }
}

/// App servers with IPv6 addresses: nginx's server lines, proxy_pass and the rotation's
/// ADDRESS:PORT carry the address in brackets, as nginx and URLs need.
@Suite struct IPv6AddressTests {
    @Test func theUpstreamAndTheRotationBracketAnIPv6Address() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-v6-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder + "/app", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "{}\n".write(toFile: folder + "/app/package.json", atomically: true, encoding: .utf8)
        try """
            { "name": "v6", "domain": "wayshub.test",
              "hosts": [
                { "name": "proxy", "address": "fd00::10", "roles": ["proxy"] },
                { "name": "app1", "address": "fd00::11", "roles": ["app"] },
                { "name": "app2", "address": "fd00::12", "roles": ["app"] } ],
              "app": { "source": { "path": "app" }, "node": { "install": "apt" } } }
            """.write(toFile: folder + "/inventory.json", atomically: true, encoding: .utf8)
        let inventory = try InventoryLoader.load(path: folder + "/inventory.json")
        let playbooks = ShippedPlaybookTests.root.appendingPathComponent("playbooks").path
        let runner = PlaybookRunner(inventory: inventory, options: RunOptions(playbookDirectory: playbooks))
        let deploy = try PlaybookParser.parse(fileAt: playbooks + "/deploy.yml")
        #expect(runner.validate(deploy).isEmpty)
        let proxy = try #require(runner.targets.first { $0.name == "proxy" })
        let step = try #require(deploy.steps.first { $0.name == "reverse proxy / load balancer for the lab's domain" })
        let config = try #require((try runner.compiler.operation(for: step.action, context: proxy.context) as? FileOperation)?.content)
        #expect(config.contains("server [fd00::11]:3000 weight=1 "), "\(config)")
        #expect(config.contains("server [fd00::12]:3000 weight=1 "), "\(config)")

        let app1 = try #require(runner.targets.first { $0.name == "app1" })
        let rollout = try #require(deploy.steps.compactMap(\.rollout).first)
        let takeOut = try #require(rollout.rotation?.steps(of: rollout).takeOut)
        let command = try #require(try runner.compiler.operation(for: takeOut.action, context: app1.context) as? CommandOperation)
        #expect(command.run == "/opt/labctl/nginx-upstream out '[fd00::11]':3000", "\(command.run)")
    }
}
