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
