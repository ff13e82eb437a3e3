import Foundation

extension Inventory {
    /// The hosts a command line target names: "all", a host name, a role name, or a
    /// comma-separated list of those (a name that is both a host and a role selects both).
    /// Hosts come once each, in file order.
    public func select(_ target: String) throws(InventoryTargetError) -> [InventoryHost] {
        let parts = target.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var chosen = Set<String>()
        var unknown: [String] = []
        for part in parts {
            if part == "all" {
                chosen.formUnion(hosts.map(\.name))
                continue
            }
            let matches = hosts.filter { $0.name == part || $0.roles.contains(part) }
            if matches.isEmpty {
                unknown.append(part)
            } else {
                chosen.formUnion(matches.map(\.name))
            }
        }
        guard unknown.isEmpty, !parts.isEmpty else {
            throw InventoryTargetError(unknown: unknown,
                                       knownHosts: hosts.map(\.name), knownRoles: roles)
        }
        return hosts.filter { chosen.contains($0.name) }
    }

    /// What stops `labctl lab up` from giving every host its own address in `lab.subnet`:
    /// addresses that are not IPv4, outside the subnet, shared by two hosts, or the subnet's
    /// network, gateway (held by the bridge) or broadcast address. Empty when the lab can be made.
    /// Not part of loading: an inventory of real VMs has addresses anywhere.
    public func labProblems() -> [InventoryProblem] {
        let subnet = lab.subnet
        let usable = "\(IPv4Subnet.format(subnet.gateway + 1)) to \(IPv4Subnet.format(subnet.broadcast - 1))"
        var problems: [InventoryProblem] = []
        var owners: [UInt32: Int] = [:]
        for (index, host) in hosts.enumerated() {
            let path = "hosts[\(index)].address"
            func report(_ message: String) { problems.append(InventoryProblem(path: path, message: message)) }
            guard let address = IPv4Subnet.parseAddress(host.address) else {
                report("\(ValueForm.shown(host.address)) is not an IPv4 address; a local lab host needs one in \(subnet) (\(usable))")
                continue
            }
            if !subnet.contains(address) {
                report("\(ValueForm.shown(host.address)) is outside the lab subnet \(subnet); expected an address from \(usable)")
            } else if address == subnet.network {
                report("\(ValueForm.shown(host.address)) is the network address of \(subnet); expected an address from \(usable)")
            } else if address == subnet.broadcast {
                report("\(ValueForm.shown(host.address)) is the broadcast address of \(subnet); expected an address from \(usable)")
            } else if address == subnet.gateway {
                report("\(ValueForm.shown(host.address)) is the lab's gateway (the bridge \(lab.bridge) holds it); expected an address from \(usable)")
            }
            if let owner = owners[address] {
                report("\(ValueForm.shown(host.address)) is also the address of hosts[\(owner)] (\(ValueForm.shown(hosts[owner].name))); every lab host needs its own")
            } else {
                owners[address] = index
            }
        }
        return problems
    }
}
