import Foundation
import LabSpec

/// The lab's bridge, the hosts' network namespaces and veth pairs, and optional NAT.
enum Network {
    static func ensureBridge(_ bridge: String, gateway: IPv4Address, subnet: IPv4Subnet) async throws(LabError) {
        if try await Command.capture("ip", ["link", "show", bridge]).status != 0 {
            try await Command.run("ip", ["link", "add", bridge, "type", "bridge"])
        }
        let addresses = try await Command.run("ip", ["-4", "-o", "addr", "show", "dev", bridge])
        if !addresses.contains(" \(gateway)/\(subnet.prefixLength) ") {
            try await Command.run("ip", ["addr", "add", "\(gateway)/\(subnet.prefixLength)", "dev", bridge])
        }
        try await Command.run("ip", ["link", "set", bridge, "up"])
    }

    /// A named namespace with `eth0` (address, default route via the bridge) whose peer is
    /// plugged into the bridge. `ip -batch` keeps this to three processes per host.
    static func createHostNetwork(state: HostState, bridge: String, prefixLength: Int, gateway: String)
        async throws(LabError)
    {
        try await Command.run("ip", ["netns", "add", state.netns])
        // eth0 keeps one MAC address across restarts of the host: the machine's ARP entry for
        // the host's address stays right (a new MAC would leave it stale for half a minute).
        let outside = """
            link add \(state.veth) type veth peer name eth0 address \(state.macAddress) netns \(state.netns)
            link set \(state.veth) master \(bridge)
            link set \(state.veth) up

            """
        try await Command.run("ip", ["-batch", "-"], input: outside)
        let inside = """
            link set lo up
            addr add \(state.address)/\(prefixLength) dev eth0
            link set eth0 up
            route add default via \(gateway)

            """
        try await Command.run("ip", ["-n", state.netns, "-batch", "-"], input: inside)
    }

    static func removeHostNetwork(state: HostState) async {
        // Deleting the namespace deletes eth0 and with it the veth peer; the explicit delete
        // covers a half-made pair.
        _ = try? await Command.capture("ip", ["netns", "delete", state.netns])
        _ = try? await Command.capture("ip", ["link", "delete", state.veth])
    }

    static func removeBridge(_ bridge: String, createdByLab: Bool, gateway: String) async {
        guard let output = try? await Command.capture("ip", ["-4", "-o", "addr", "show", "dev", bridge]),
            output.succeeded
        else { return }
        // A bridge that was there before the lab keeps living; only its gateway address goes.
        let onlyOurs = output.stdout.split(separator: "\n").allSatisfy { $0.contains(" \(gateway)/") }
        if createdByLab || onlyOurs {
            _ = try? await Command.capture("ip", ["link", "delete", bridge])
        } else {
            _ = try? await Command.capture("ip", ["addr", "flush", "to", gateway, "dev", bridge])
        }
    }

    static func natTable(lab: String) -> String { "labctl_" + lab.replacingOccurrences(of: "-", with: "_") }

    /// Masquerades the lab's traffic leaving by other interfaces, accepts it through the
    /// forward hook (for machines whose forward policy is drop), and turns on ip_forward.
    /// Everything lives in one nftables table of the lab's own, so `down` removes it whole.
    static func enableNAT(lab: String, subnet: IPv4Subnet, bridge: String) async throws(LabError) -> NATState {
        let table = natTable(lab: lab)
        let forwardPath = "/proc/sys/net/ipv4/ip_forward"
        let before = (Machine.readKernelFile(forwardPath) ?? "0")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let rules = """
            table ip \(table) {
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr \(subnet) oifname != "\(bridge)" masquerade
              }
              chain forward {
                type filter hook forward priority filter - 1; policy accept;
                iifname "\(bridge)" accept
                oifname "\(bridge)" ct state established,related accept
              }
            }

            """
        _ = try? await Command.capture("nft", ["delete", "table", "ip", table])
        try await Command.run("nft", ["-f", "-"], input: rules)
        try Machine.writeInPlace("1\n", to: forwardPath)
        return NATState(table: table, ipForwardBefore: before)
    }

    static func disableNAT(_ nat: NATState) async {
        if Command.exists("nft") {
            _ = try? await Command.capture("nft", ["delete", "table", "ip", nat.table])
        }
        if nat.ipForwardBefore == "0" || nat.ipForwardBefore == "1" {
            try? Machine.writeInPlace(nat.ipForwardBefore + "\n", to: "/proc/sys/net/ipv4/ip_forward")
        }
    }
}
