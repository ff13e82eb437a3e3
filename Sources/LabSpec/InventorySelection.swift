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
}
