import Foundation
import LabSpec

/// The machine's tools the lab runs, and the Debian packages that provide them.
enum Preflight {
    struct Tool: Sendable {
        var executable: String
        var package: String
    }

    static let upTools: [Tool] = [
        Tool(executable: "systemd-nspawn", package: "systemd-container"),
        Tool(executable: "debootstrap", package: "debootstrap"),
        Tool(executable: "ip", package: "iproute2"),
        Tool(executable: "ssh-keygen", package: "openssh-client"),
        Tool(executable: "ssh", package: "openssh-client"),
        Tool(executable: "setsid", package: "util-linux"),
        Tool(executable: "useradd", package: "passwd"),
    ]
    static let natTools: [Tool] = [Tool(executable: "nft", package: "nftables")]

    /// Installs the packages of missing tools with apt-get (CI and new machines start without
    /// them); fails with the exact command when that is not possible.
    static func ensureTools(_ tools: [Tool], progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError) {
        var packages: [String] = []
        for tool in tools where !Command.exists(tool.executable) && !packages.contains(tool.package) {
            packages.append(tool.package)
        }
        guard !packages.isEmpty else { return }
        guard Command.exists("apt-get") else {
            throw .missingTools(packages: packages, reason: "this machine has no apt-get")
        }
        progress(LabProgress(.phase, "installing \(packages.joined(separator: ", ")) with apt-get"))
        var attempt = try await Command.capture("apt-get", ["install", "-y", "-q"] + packages)
        if !attempt.succeeded {
            // A fresh machine may have no package lists yet.
            _ = try await Command.capture("apt-get", ["update", "-q"])
            attempt = try await Command.capture("apt-get", ["install", "-y", "-q"] + packages)
        }
        let stillMissing = tools.filter { !Command.exists($0.executable) }
        guard attempt.succeeded, stillMissing.isEmpty else {
            let tail = attempt.stderr.split(separator: "\n").suffix(2).joined(separator: " | ")
            throw .missingTools(packages: packages, reason: tail.isEmpty ? "apt-get failed" : tail)
        }
    }

    /// The lab's recipe puts each host in its own cgroup of the named `systemd` v1 hierarchy
    /// and of the cgroup2 `unified` one (the hybrid layout of machines whose PID 1 is not
    /// systemd, like these containers and CI). Other layouts are refused rather than half-used.
    static func checkCgroupLayout(mountsText: String? = nil) throws(LabError) {
        let text = mountsText ?? (Machine.readKernelFile("/proc/self/mounts") ?? "")
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 3 { types[String(fields[1])] = String(fields[2]) }
        }
        let root = Machine.cgroupRoot
        let found = ["systemd", "unified", "memory"].map { types["\(root)/\($0)"] }
        guard found == ["cgroup", "cgroup2", "cgroup"] else {
            let layout = types[root] == "cgroup2" ? "cgroup v2 only" : "no named systemd cgroup hierarchy"
            throw .unsupportedCgroups(layout: layout)
        }
    }

    /// The machine's IPv4 addresses and routes, from `ip -j`.
    static func machineNetworks() async throws(LabError) -> [MachineNetwork] {
        let addresses = try await Command.run("ip", ["-j", "-4", "addr", "show"])
        let routes = try await Command.run("ip", ["-j", "-4", "route", "show", "table", "all"])
        return parseAddresses(addresses) + parseRoutes(routes)
    }

    static func parseAddresses(_ json: String) -> [MachineNetwork] {
        guard let interfaces = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else {
            return []
        }
        var result: [MachineNetwork] = []
        for interface in interfaces {
            let name = interface["ifname"] as? String ?? "?"
            for info in interface["addr_info"] as? [[String: Any]] ?? [] {
                guard let local = info["local"] as? String, let address = IPv4Address(local),
                    let length = info["prefixlen"] as? Int
                else { continue }
                // Loopback's 127.0.0.0/8 is the machine's own business.
                if name == "lo" { continue }
                result.append(
                    MachineNetwork(
                        network: IPv4Subnet(containing: address, prefixLength: length),
                        label: "address \(local)/\(length) of \(name)", device: name))
            }
        }
        return result
    }

    static func parseRoutes(_ json: String) -> [MachineNetwork] {
        guard let routes = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else {
            return []
        }
        var result: [MachineNetwork] = []
        for route in routes {
            guard let destination = route["dst"] as? String, destination != "default" else { continue }
            // Local and broadcast routes repeat the interface addresses; 127/8 is loopback.
            if let type = route["type"] as? String, type != "unicast" { continue }
            let parts = destination.split(separator: "/")
            guard let address = IPv4Address(String(parts[0])) else { continue }
            let length = parts.count > 1 ? Int(parts[1]) ?? 32 : 32
            let device = route["dev"] as? String
            if device == "lo" { continue }
            result.append(
                MachineNetwork(
                    network: IPv4Subnet(containing: address, prefixLength: length),
                    label: "route \(destination)" + (device.map { " via \($0)" } ?? ""), device: device))
        }
        return result
    }
}
