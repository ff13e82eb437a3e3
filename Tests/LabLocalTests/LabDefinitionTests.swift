import Foundation
import Testing
import LabSpec

@testable import LabLocal

/// Checks that need no root and touch nothing: the refusals `up` makes before creating anything.
@Suite struct LabDefinitionTests {
    static func definition(subnet: String = "198.18.77.0/24", hosts: [LabHostDefinition]) -> LabDefinition {
        LabDefinition(
            name: "unit", subnet: IPv4Subnet(cidr: subnet)!, bridge: "labu0", hosts: hosts, loginKeyPath: "/nonexistent/key",
            knownHostsPath: "/nonexistent/known_hosts")
    }

    @Test func acceptsAWellFormedLab() throws {
        let lab = try Self.definition(hosts: [
            LabHostDefinition(name: "proxy", address: "198.18.77.10"),
            LabHostDefinition(name: "app1", address: "198.18.77.11", user: "ubuntu"),
        ]).validated()
        #expect(lab.gateway.description == "198.18.77.1")
        #expect(lab.hosts.map(\.address.description) == ["198.18.77.10", "198.18.77.11"])
    }

    @Test func refusesAnAddressOutsideTheSubnet() {
        #expect(throws: LabError.addressOutsideSubnet(host: "app1", address: "198.18.78.5", subnet: "198.18.77.0/24")) {
            try Self.definition(hosts: [LabHostDefinition(name: "app1", address: "198.18.78.5")]).validated()
        }
    }

    @Test(arguments: [
        ("198.18.77.0", "network"), ("198.18.77.1", "gateway (the bridge's)"), ("198.18.77.255", "broadcast"),
    ])
    func refusesReservedAddresses(address: String, role: String) {
        #expect(throws: LabError.reservedAddress(host: "h", address: address, role: role)) {
            try Self.definition(hosts: [LabHostDefinition(name: "h", address: address)]).validated()
        }
    }

    @Test func refusesDuplicateAddressesAndNames() {
        #expect(throws: LabError.duplicateAddress(address: "198.18.77.9", hosts: ["a", "b"])) {
            try Self.definition(hosts: [
                LabHostDefinition(name: "a", address: "198.18.77.9"), LabHostDefinition(name: "b", address: "198.18.77.9"),
            ]).validated()
        }
        #expect(throws: LabError.duplicateHostName("a")) {
            try Self.definition(hosts: [
                LabHostDefinition(name: "a", address: "198.18.77.9"), LabHostDefinition(name: "a", address: "198.18.77.8"),
            ]).validated()
        }
    }

    @Test func refusesBadNamesAndUsers() {
        #expect(throws: LabError.self) {
            try Self.definition(hosts: [LabHostDefinition(name: "bad/name", address: "198.18.77.9")]).validated()
        }
        #expect(throws: LabError.self) {
            try Self.definition(hosts: [LabHostDefinition(name: "h", address: "198.18.77.9", user: "Root Admin")])
                .validated()
        }
    }

    /// The lab's rules are the inventory's: what loads as an inventory makes a lab, and what
    /// the inventory refuses the lab refuses too.
    @Test func agreesWithTheInventoryOnNamesUsersAndAddresses() throws {
        _ = try Self.definition(hosts: [LabHostDefinition(name: "app-1", address: "198.18.77.9", user: "first.last")]).validated()
        #expect(InventorySyntax.isUserName("first.last"))
        #expect(throws: LabError.invalidAddress(host: "h", address: "198.18.77.09")) {
            try Self.definition(hosts: [LabHostDefinition(name: "h", address: "198.18.77.09")]).validated()
        }
        #expect(!InventorySyntax.isIPv4("198.18.77.09"))
        #expect(throws: LabError.self) {
            try Self.definition(hosts: [LabHostDefinition(name: "App1", address: "198.18.77.9")]).validated()
        }
        #expect(!InventorySyntax.isLowercaseLabel("App1"))
    }

    static func inventory(_ hosts: String, defaults: String = #""defaults": { "key": "/k/lab" },"#) throws -> Inventory {
        let json = #"{ "name": "unit-lab", \#(defaults) "lab": { "subnet": "198.18.42.0/24" }, "hosts": [ \#(hosts) ] }"#
        return try InventoryLoader.parse(data: Data(json.utf8), file: "inventory.json", baseDirectory: URL(fileURLWithPath: "/srv"))
    }

    /// The lab made from an inventory: its hosts checked by the one validation, first problem first.
    @Test func anInventorysLabIsCheckedByTheOneValidation() throws {
        let fine = try LabDefinition(inventory: Self.inventory(#"{ "name": "h0", "address": "198.18.42.20", "roles": ["x"] }"#))
        #expect(fine.name == "unit-lab")
        #expect(fine.subnet.description == "198.18.42.0/24")
        #expect(fine.loginKeyPath == "/k/lab")
        _ = try fine.validated()
        let cases: [(String, LabError)] = [
            (#"{ "name": "h1", "address": "10.1.2.3", "roles": ["x"] }"#,
             .addressOutsideSubnet(host: "h1", address: "10.1.2.3", subnet: "198.18.42.0/24")),
            (#"{ "name": "h2", "address": "198.18.42.0", "roles": ["x"] }"#, .reservedAddress(host: "h2", address: "198.18.42.0", role: "network")),
            (#"{ "name": "h3", "address": "198.18.42.1", "roles": ["x"] }"#,
             .reservedAddress(host: "h3", address: "198.18.42.1", role: "gateway (the bridge's)")),
            (#"{ "name": "h4", "address": "198.18.42.255", "roles": ["x"] }"#,
             .reservedAddress(host: "h4", address: "198.18.42.255", role: "broadcast")),
            (#"{ "name": "h5", "address": "app.example.net", "roles": ["x"] }"#, .invalidAddress(host: "h5", address: "app.example.net")),
        ]
        for (hosts, expected) in cases {
            #expect(throws: expected, "\(hosts)") { try LabDefinition(inventory: Self.inventory(hosts)).validated() }
            #expect(expected.isBadInput)
        }
    }

    @Test func anInventoryThatNoLabCanServe() throws {
        let host = #"{ "name": "h0", "address": "198.18.42.20", "roles": ["x"] }"#
        // (An inventory always names a key: ~/.ssh/id_ed25519 when it says none.)
        #expect(try LabDefinition(inventory: Self.inventory(host, defaults: "")).loginKeyPath.hasSuffix("/.ssh/id_ed25519"))
        #expect(throws: LabError.labHostPort(host: "h0", port: 2222)) {
            try LabDefinition(inventory: Self.inventory(#"{ "name": "h0", "address": "198.18.42.20", "port": 2222, "roles": ["x"] }"#))
        }
        #expect(throws: LabError.severalLoginKeys(["/k/a", "/k/lab"])) {
            try LabDefinition(inventory: Self.inventory(host + #", { "name": "h1", "address": "198.18.42.21", "key": "/k/a", "roles": ["x"] }"#))
        }
    }

    @Test func refusesASubnetThatCollidesWithAnInterfaceOrRoute() throws {
        let lab = try Self.definition(hosts: [LabHostDefinition(name: "h", address: "198.18.77.9")]).validated()
        let addresses = Preflight.parseAddresses(
            #"[{"ifname":"lo","addr_info":[{"local":"127.0.0.1","prefixlen":8}]},"#
                + #"{"ifname":"eth0","addr_info":[{"local":"192.0.2.2","prefixlen":24}]},"#
                + #"{"ifname":"wg0","addr_info":[{"local":"198.18.77.200","prefixlen":32}]}]"#)
        #expect(throws: LabError.subnetCollides(
            subnet: "198.18.77.0/24", existing: "198.18.77.200/32", where: "address 198.18.77.200/32 of wg0")) {
            try lab.checkCollisions(with: addresses)
        }
        let routes = Preflight.parseRoutes(
            #"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"198.18.0.0/15","gateway":"192.0.2.9","dev":"eth0"},"#
                + #"{"type":"local","dst":"127.0.0.1","dev":"lo"}]"#)
        #expect(throws: LabError.subnetCollides(
            subnet: "198.18.77.0/24", existing: "198.18.0.0/15", where: "route 198.18.0.0/15 via eth0")) {
            try lab.checkCollisions(with: routes)
        }
        // The machine's own network and the lab's bridge (present while the lab is up) are fine.
        try lab.checkCollisions(with: Array(addresses.prefix(1)))
        try lab.checkCollisions(with: [
            MachineNetwork(network: lab.subnet, label: "address 198.18.77.1/24 of labu0", device: "labu0")
        ])
    }

    @Test func refusesSubnetsInRangesNoLabMayUse() {
        #expect(throws: LabError.unusableSubnet(subnet: "127.0.0.0/24", range: "127.0.0.0/8", why: "loopback")) {
            try Self.definition(subnet: "127.0.0.0/24", hosts: [LabHostDefinition(name: "h", address: "127.0.0.9")]).validated()
        }
        #expect(throws: LabError.unusableSubnet(subnet: "224.1.0.0/16", range: "224.0.0.0/4", why: "multicast")) {
            try Self.definition(subnet: "224.1.0.0/16", hosts: [LabHostDefinition(name: "h", address: "224.1.0.9")]).validated()
        }
    }

    @Test func errorsReadAsOneSentenceWithWhatToDo() {
        let error = LabError.missingTools(packages: ["systemd-container", "debootstrap"], reason: "no network")
        #expect(error.description.contains("apt-get update && apt-get install -y systemd-container debootstrap"))
        #expect(!LabError.notRoot(action: "labctl lab up").description.contains("\n"))
    }

    @Test func mirrorsComeFromTheMachinesAptSources() {
        let deb822 = """
            Types: deb
            URIs: http://mirror.example/debian/
            Suites: bookworm bookworm-updates
            Components: main

            Types: deb
            URIs: http://mirror.example/debian-security
            Suites: bookworm-security
            Components: main
            """
        let other = "deb [signed-by=/k.gpg] https://deb.nodesource.com/node_20.x nodistro main\n"
        let mirrors = DebianMirrors.parse([other, deb822])
        #expect(mirrors == DebianMirrors(main: "http://mirror.example/debian", security: "http://mirror.example/debian-security"))
        #expect(DebianMirrors.parse(["deb http://ftp.example/debian bookworm main\n"]).main == "http://ftp.example/debian")
        #expect(DebianMirrors.parse([]) == DebianMirrors.fallback)
    }

    @Test func hostObjectNamesFitLinuxLimits() {
        let state = HostState(
            lab: "a-rather-long-lab-name", host: "a-rather-long-host-name", address: "198.18.77.9", user: "root",
            stateDirectory: "/var/lib/labctl/labs/x")
        #expect(state.veth.count <= 15)
        #expect(state.veth != HostState(lab: "a", host: "b", address: "", user: "", stateDirectory: "/").veth)
    }

    @Test func knownHostsLinesForTheLabsAddressesAreReplacedOthersKept() throws {
        let path = NSTemporaryDirectory() + "labctl-known-hosts-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("github.com ssh-ed25519 AAAAkeep\n198.18.77.10 ssh-ed25519 AAAAold\n198.18.77.10 ecdsa-sha2-nistp256 AAAAold2\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        try KnownHosts.record(
            [(address: "198.18.77.11", key: "ssh-ed25519 AAAAnew11"), (address: "198.18.77.10", key: "ssh-ed25519 AAAAnew10")],
            in: path)
        #expect(
            try String(contentsOfFile: path, encoding: .utf8)
                == "github.com ssh-ed25519 AAAAkeep\n198.18.77.10 ssh-ed25519 AAAAnew10\n198.18.77.11 ssh-ed25519 AAAAnew11\n")
    }

    @Test func onlyTheHybridCgroupLayoutIsAccepted() throws {
        let hybrid = """
            tmpfs /sys/fs/cgroup tmpfs rw 0 0
            cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
            cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0
            """
        try Preflight.checkCgroupLayout(mountsText: hybrid)
        #expect(throws: LabError.unsupportedCgroups(layout: "cgroup v2 only")) {
            try Preflight.checkCgroupLayout(mountsText: "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
        }
    }

    /// Where `lab status --log` looks for a host's journal: its overlay (merged, then upper),
    /// then the running container's /run.
    @Test func aHostsJournalIsLookedForInItsOverlayThenUnderRun() {
        #expect(LocalLab.journalDirectories(merged: "/s/merged", upper: "/s/upper", machineID: "abc", leader: 42) == [
            "/s/merged/var/log/journal/abc", "/s/upper/var/log/journal/abc", "/proc/42/root/run/log/journal/abc",
        ])
        #expect(LocalLab.journalDirectories(merged: "/s/merged", upper: "/s/upper", machineID: "abc", leader: nil) == [
            "/s/merged/var/log/journal/abc", "/s/upper/var/log/journal/abc",
        ])
    }
}
