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
    static let unusableRanges = [
        ("0.0.0.0/8", "\"this network\""), ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
    ]

    /// Checks everything that can be checked without touching the machine. All hosts are
    /// checked, but the first problem found is the one reported.
    func validated() throws(LabError) -> ValidatedLab {
        try Self.checkName(name, field: "lab name", maxLength: 32)
        try Self.checkName(bridge, field: "bridge name", maxLength: 15)
        guard let subnet = IPv4Subnet(subnet) else { throw .invalidSubnet(self.subnet) }
        // A bridge in these ranges would take over addresses this machine needs (loopback) or
        // that no host can have; the lab never touches them.
        for (range, why) in Self.unusableRanges {
            if let reserved = IPv4Subnet(range), reserved.contains(subnet.network) || subnet.contains(reserved.network) {
                throw .unusableSubnet(subnet: subnet.description, range: range, why: why)
            }
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
            // Host names become hostnames and parts of file names.
            try Self.checkName(host.name, field: "host name", maxLength: 63)
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

    static func checkUser(_ user: String) throws(LabError) {
        let allowed = user.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
        guard let first = user.unicodeScalars.first, ("a"..."z").contains(first) || first == "_",
            user.count <= 32, allowed
        else {
            throw .invalidName(
                field: "login user", value: user,
                rule: "use lower-case letters, digits, '-' or '_', starting with a letter (like \"ubuntu\")")
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
