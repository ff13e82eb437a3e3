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

    @Test("a lab inventory inside its subnet has no lab problems")
    func labFine() {
        #expect(inventory.labProblems().isEmpty)
    }

    @Test("lab problems: outside the subnet, reserved addresses, names, shared addresses")
    func labProblems() throws {
        var lab = try parse(inventoryJSON(hosts: """
            { "name": "h0", "address": "198.18.42.20", "roles": ["x"] },
            { "name": "h1", "address": "10.1.2.3", "roles": ["x"] },
            { "name": "h2", "address": "198.18.42.0", "roles": ["x"] },
            { "name": "h3", "address": "198.18.42.1", "roles": ["x"] },
            { "name": "h4", "address": "198.18.42.255", "roles": ["x"] },
            { "name": "h5", "address": "app.example.net", "roles": ["x"] },
            { "name": "h6", "address": "198.18.42.20", "port": 2222, "roles": ["x"] }
            """))
        #expect(lab.labProblems().map(\.description) == [
            "hosts[1].address: '10.1.2.3' is outside the lab subnet 198.18.42.0/24; expected an address from 198.18.42.2 to 198.18.42.254",
            "hosts[2].address: '198.18.42.0' is the network address of 198.18.42.0/24; expected an address from 198.18.42.2 to 198.18.42.254",
            "hosts[3].address: '198.18.42.1' is the lab's gateway (the bridge labctl0 holds it); expected an address from 198.18.42.2 to 198.18.42.254",
            "hosts[4].address: '198.18.42.255' is the broadcast address of 198.18.42.0/24; expected an address from 198.18.42.2 to 198.18.42.254",
            "hosts[5].address: 'app.example.net' is not an IPv4 address; a local lab host needs one in 198.18.42.0/24 (198.18.42.2 to 198.18.42.254)",
            "hosts[6].address: '198.18.42.20' is also the address of hosts[0] ('h0'); every lab host needs its own",
        ])
        // The check follows the inventory's own subnet.
        lab.lab.subnet = try #require(IPv4Subnet(cidr: "10.1.2.0/28"))
        #expect(lab.labProblems().map(\.path).contains("hosts[1].address") == false)
    }

    @Test("subnet arithmetic")
    func subnet() throws {
        let subnet = try #require(IPv4Subnet(cidr: "198.18.42.0/24"))
        #expect(subnet.gatewayAddress == "198.18.42.1")
        #expect(subnet.broadcastAddress == "198.18.42.255")
        #expect(subnet.contains("198.18.42.77"))
        #expect(!subnet.contains("198.18.43.1"))
        #expect(IPv4Subnet(cidr: "198.18.0.0/15")?.broadcastAddress == "198.19.255.255")
        for bad in ["198.18.42.0/33", "198.18.42.0/", "198.18.42/24", "198.18.042.0/24", "198.18.42.0/24/1", "198.18.42.0/7"] {
            #expect(IPv4Subnet(cidr: bad) == nil, "\(bad)")
        }
    }
}
