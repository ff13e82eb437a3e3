import LabSpec

/// A definition whose names and addresses were checked, with the parsed values.
struct ValidatedLab: Sendable {
    var definition: LabDefinition
    var subnet: IPv4Subnet
    var hosts: [ValidatedHost]

    var gateway: IPv4Address { subnet.gateway }
}

struct ValidatedHost: Sendable, Hashable {
    var index: Int
    var definition: LabHostDefinition
    var address: IPv4Address
    var name: String { definition.name }
}

extension LabDefinition {
    static let unusableRanges: [(IPv4Subnet, String)] = [
        ("0.0.0.0", 8, "\"this network\""), ("127.0.0.0", 8, "loopback"), ("169.254.0.0", 16, "link-local"),
        ("224.0.0.0", 4, "multicast"), ("240.0.0.0", 4, "reserved"),
    ].map { (IPv4Subnet(containing: IPv4Address($0.0)!, prefixLength: $0.1), $0.2) }

    /// Checks everything that can be checked without touching the machine. All hosts are
    /// checked, but the first problem found is the one reported.
    func validated() throws(LabError) -> ValidatedLab {
        try Self.checkName(name, field: "lab name", maxLength: 32)
        try Self.checkName(bridge, field: "bridge name", maxLength: 15)
        // A bridge in these ranges would take over addresses this machine needs (loopback) or
        // that no host can have; the lab never touches them.
        for (reserved, why) in Self.unusableRanges where reserved.overlaps(subnet) {
            throw .unusableSubnet(subnet: subnet.description, range: reserved.description, why: why)
        }
        guard !hosts.isEmpty else { throw .noHosts }
        // Network, gateway and broadcast are taken; a /31 or /32 leaves nothing for hosts.
        guard subnet.prefixLength <= 30, (1 << (32 - subnet.prefixLength)) - 3 >= hosts.count else {
            throw .subnetTooSmall(subnet: subnet.description, hosts: hosts.count)
        }
        var seenNames = Set<String>()
        var hostsByAddress: [IPv4Address: String] = [:]
        var validated: [ValidatedHost] = []
        for (index, host) in hosts.enumerated() {
            // Host names become hostnames and parts of file names: the inventory's own rule.
            guard InventorySyntax.isLowercaseLabel(host.name) else {
                throw .invalidName(field: "host name", value: host.name, rule: "use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'")
            }
            try Self.checkUser(host.user)
            guard seenNames.insert(host.name).inserted else { throw .duplicateHostName(host.name) }
            guard let address = IPv4Address(host.address) else {
                throw .invalidAddress(host: host.name, address: host.address)
            }
            guard subnet.contains(address) else {
                throw .addressOutsideSubnet(host: host.name, address: host.address, subnet: subnet.description)
            }
            if address == subnet.network {
                throw .reservedAddress(host: host.name, address: host.address, role: "network")
            }
            if address == subnet.gateway {
                throw .reservedAddress(host: host.name, address: host.address, role: "gateway (the bridge's)")
            }
            if address == subnet.broadcast {
                throw .reservedAddress(host: host.name, address: host.address, role: "broadcast")
            }
            if let other = hostsByAddress[address] {
                throw .duplicateAddress(address: host.address, hosts: [other, host.name])
            }
            hostsByAddress[address] = host.name
            validated.append(ValidatedHost(index: index, definition: host, address: address))
        }
        return ValidatedLab(definition: self, subnet: subnet, hosts: validated)
    }

    static func checkName(_ value: String, field: String, maxLength: Int) throws(LabError) {
        let allowed = value.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
        guard !value.isEmpty, value.count <= maxLength, allowed, !value.hasPrefix("-") else {
            throw .invalidName(
                field: field, value: value,
                rule: "use 1 to \(maxLength) letters, digits or '-', not starting with '-'")
        }
    }

    /// The inventory's rule for login names (what `useradd` accepts by default), so that every
    /// inventory that loads makes a lab.
    static func checkUser(_ user: String) throws(LabError) {
        guard InventorySyntax.isUserName(user) else {
            throw .invalidName(
                field: "login user", value: user,
                rule: "use lowercase letters, digits, '-', '_' or '.', starting with a letter or '_' (like \"ubuntu\")")
        }
    }
}

/// An address or route the machine already has, as `ip -j` reports it.
struct MachineNetwork: Sendable, Hashable {
    var network: IPv4Subnet
    /// "address 192.0.2.2/24 of eth0" or "route 10.0.0.0/8 via eth0".
    var label: String
    var device: String?
}

extension ValidatedLab {
    /// The subnet must not overlap any address or route of the machine, except the lab's own
    /// bridge (present when the lab is already up).
    func checkCollisions(with existing: [MachineNetwork]) throws(LabError) {
        for entry in existing where entry.device != definition.bridge {
            if entry.network.overlaps(subnet) {
                throw .subnetCollides(subnet: subnet.description, existing: entry.network.description, where: entry.label)
            }
        }
    }
}
