import Foundation
import Testing
@testable import LabSpec

@Suite("Host selection and lab checks")
struct InventorySelectionTests {
    let inventory: Inventory

    init() throws {
        inventory = try parse(inventoryJSON(hosts: """
            { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
            { "name": "app1", "address": "198.18.42.11", "roles": ["app", "blue"] },
            { "name": "app2", "address": "198.18.42.12", "roles": ["app"] },
            { "name": "db", "address": "198.18.42.13", "roles": ["db", "blue"] }
            """))
    }

    @Test("targets select hosts in file order", arguments: [
        ("all", ["proxy", "app1", "app2", "db"]),
        ("app2", ["app2"]),
        ("app", ["app1", "app2"]),
        ("blue", ["app1", "db"]),
        ("db,proxy", ["proxy", "db"]),
        ("app, app1 ,proxy", ["proxy", "app1", "app2"]),
        ("all,app", ["proxy", "app1", "app2", "db"]),
    ])
    func select(target: String, expected: [String]) throws {
        #expect(try inventory.select(target).map(\.name) == expected)
    }

    @Test("a name that is both a host and a role selects both")
    func hostAndRole() throws {
        let both = try parse(inventoryJSON(hosts: """
            { "name": "proxy", "address": "10.0.0.1", "roles": ["edge"] },
            { "name": "edge2", "address": "10.0.0.2", "roles": ["proxy"] },
            { "name": "other", "address": "10.0.0.3", "roles": ["x"] }
            """))
        #expect(try both.select("proxy").map(\.name) == ["proxy", "edge2"])
    }

    @Test("an unknown target names the hosts and roles there are")
    func unknownTarget() {
        let error = #expect(throws: InventoryTargetError.self) { try inventory.select("app,web,app3") }
        #expect(error?.unknown == ["web", "app3"])
        #expect(error?.description ==
            "'web', 'app3' are not hosts or roles of the inventory; use 'all', a host (proxy, app1, app2, db) "
            + "or a role (proxy, app, blue, db), or a comma-separated list of them")
        let empty = #expect(throws: InventoryTargetError.self) { try inventory.select(" , ") }
        #expect(empty?.description.hasPrefix("no target given; use 'all'") == true)
    }

    @Test("subnet arithmetic")
    func subnet() throws {
        let subnet = try #require(IPv4Subnet(cidr: "198.18.42.0/24"))
        #expect(subnet.gateway.description == "198.18.42.1")
        #expect(subnet.broadcast.description == "198.18.42.255")
        #expect(subnet.contains("198.18.42.77"))
        #expect(!subnet.contains("198.18.43.1"))
        #expect(IPv4Subnet(cidr: "198.18.0.0/15")?.broadcast.description == "198.19.255.255")
        #expect(IPv4Subnet(containing: IPv4Address("10.1.3.7")!, prefixLength: 23).description == "10.1.2.0/23")
        #expect(IPv4Subnet(cidr: "10.1.2.0/23")!.overlaps(IPv4Subnet(containing: IPv4Address("10.0.0.0")!, prefixLength: 8)))
        #expect(!IPv4Subnet(cidr: "10.1.2.0/23")!.overlaps(IPv4Subnet(cidr: "10.1.4.0/24")!))
        for bad in ["198.18.042.7", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", " 1.2.3.4", "01.2.3.4"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        for bad in ["198.18.42.0/33", "198.18.42.0/", "198.18.42/24", "198.18.042.0/24", "198.18.42.0/24/1", "198.18.42.0/7", "198.18.42.1/24", "banana/24", "198.18.277.0/24"] {
            #expect(IPv4Subnet(cidr: bad) == nil, "\(bad)")
        }
    }
}
