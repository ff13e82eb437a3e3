import Foundation
import Testing
@testable import LabSpec

/// The package's root folder, found from this file's path, for the shipped inventories.
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let testBase = URL(fileURLWithPath: "/srv/lab-inventories", isDirectory: true)

/// A small valid inventory; `hosts` and `extra` (more top-level fields, with a leading comma)
/// let each case change one thing.
func inventoryJSON(
    hosts: String = """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"] },
        { "name": "app2", "address": "198.18.42.12", "roles": ["app"] }
        """,
    extra: String = ""
) -> String {
    """
    {
      "name": "test-lab",
      "hosts": [
        \(hosts)
      ]\(extra)
    }
    """
}

/// The app section most cases that need one use.
let appSection = """
    , "domain": "wayshub.lab", "app": { "source": { "path": "app" }, "node": { "install": "apt" } }
    """

func parse(_ json: String, file: String = "inventory.json", base: URL = testBase) throws(InventoryError) -> Inventory {
    try InventoryLoader.parse(data: Data(json.utf8), file: file, baseDirectory: base)
}

/// The problems that parsing `json` reports, as rendered lines; empty when it loads.
func problems(_ json: String) -> [String] {
    do {
        _ = try parse(json)
        return []
    } catch {
        return error.problems.map(\.description)
    }
}

var homeDirectory: String {
    ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
}
