import Foundation
import LabSpec

extension LabDefinition {
    /// The lab an inventory describes. Every host logs in with one key (the lab installs one
    /// key on all of them) and listens on port 22. The inventory's own checks have run when it
    /// loaded; `validated()` adds what only a lab needs.
    public init(inventory: Inventory, nat: Bool = false) throws(LabError) {
        let keys = Set(inventory.hosts.compactMap(\.keyPath))
        guard keys.count <= 1 else { throw .severalLoginKeys(keys.sorted()) }
        guard let key = keys.first else { throw .noLoginKey }
        if let odd = inventory.hosts.first(where: { $0.port != 22 }) {
            throw .labHostPort(host: odd.name, port: odd.port)
        }
        self.init(
            name: LabDefinition.labName(inventory.name),
            subnet: inventory.lab.subnet,
            bridge: inventory.lab.bridge,
            cacheDirectory: inventory.lab.cachePath,
            hosts: inventory.hosts.map { LabHostDefinition(name: $0.name, address: $0.address, user: $0.user) },
            loginKeyPath: key,
            knownHostsPath: inventory.ssh.knownHostsPath,
            nat: nat)
    }

    /// The inventory's name made into a lab name (letters, digits and '-').
    static func labName(_ name: String) -> String {
        let mapped = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }.prefix(32))
        let trimmed = mapped.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return trimmed.isEmpty ? "lab" : trimmed
    }
}
