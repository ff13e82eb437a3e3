import Foundation
import Testing

@testable import LabLocal

/// Checks that need no root and touch nothing: the refusals `up` makes before creating anything.
@Suite struct LabDefinitionTests {
    static func definition(subnet: String = "198.18.77.0/24", hosts: [LabHostDefinition]) -> LabDefinition {
        LabDefinition(
            name: "unit", subnet: subnet, bridge: "labu0", hosts: hosts, loginKeyPath: "/nonexistent/key",
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

    @Test(arguments: ["198.18.77.1/24", "198.18.77.0", "198.18.77.0/33", "banana/24", "198.18.277.0/24"])
    func refusesMalformedSubnets(subnet: String) {
        #expect(throws: LabError.invalidSubnet(subnet)) {
            try Self.definition(subnet: subnet, hosts: [LabHostDefinition(name: "h", address: "198.18.77.9")]).validated()
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

    @Test func subnetArithmetic() throws {
        let subnet = try #require(IPv4Subnet("10.1.2.0/23"))
        #expect(subnet.broadcast.description == "10.1.3.255")
        #expect(subnet.contains(IPv4Address("10.1.3.7")!))
        #expect(!subnet.contains(IPv4Address("10.1.4.0")!))
        #expect(subnet.overlaps(IPv4Subnet("10.0.0.0/8")!))
        #expect(!subnet.overlaps(IPv4Subnet("10.1.4.0/24")!))
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
