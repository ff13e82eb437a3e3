import Foundation

/// What `up` created, written to the state directory before anything is created, so `down`
/// can remove it even after an interrupted `up` or a changed inventory.
struct LabState: Codable, Sendable {
    var name: String
    var bridge: String
    var subnet: String
    var gateway: String
    /// The bridge did not exist before `up`, so `down` deletes it.
    var createdBridge: Bool
    var nat: NATState?
    var hosts: [HostState]
}

struct NATState: Codable, Sendable {
    /// The nftables table holding the lab's masquerade and forward rules.
    var table: String
    /// /proc/sys/net/ipv4/ip_forward before `up` changed it.
    var ipForwardBefore: String
}

/// The names of one host's runtime objects. All derive from the lab and host names, so `down`
/// can also find them without a state file.
struct HostState: Codable, Sendable, Hashable {
    var name: String
    var address: String
    var user: String
    var directory: String
    var netns: String
    /// The machine's end of the veth pair, on the bridge.
    var veth: String
    /// Relative to each cgroup hierarchy's root, e.g. labctl/demo/app1.
    var cgroup: String
    /// The name systemd-nspawn knows the host by (--machine), used in /run/systemd/nspawn.
    var machine: String

    init(lab: String, host: String, address: String, user: String, stateDirectory: String) {
        name = host
        self.address = address
        self.user = user
        directory = stateDirectory + "/hosts/" + host
        netns = "labctl-\(lab)-\(host)"
        cgroup = "labctl/\(lab)/\(host)"
        machine = "labctl-\(lab)-\(host)"
        // Interface names are limited to 15 characters; a hash of both names keeps them unique.
        veth = "vlc" + String(format: "%08x", fnv1a("\(lab)/\(host)"))
    }

    /// Locally administered, unicast, derived from the lab and host names.
    var macAddress: String {
        let hash = fnv1a("mac:" + machine)
        let bytes = [0x02, 0x1c, UInt8(hash >> 24), UInt8(hash >> 16 & 0xff), UInt8(hash >> 8 & 0xff), UInt8(hash & 0xff)]
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    var merged: String { directory + "/merged" }
    var upper: String { directory + "/upper" }
    var work: String { directory + "/work" }
    var consoleLog: String { directory + "/console.log" }
    var supervisorPIDFile: String { directory + "/supervisor.pid" }
    var nspawnPIDFile: String { directory + "/nspawn.pid" }
}

private func fnv1a(_ text: String) -> UInt32 {
    var hash: UInt32 = 2_166_136_261
    for byte in text.utf8 {
        hash ^= UInt32(byte)
        hash = hash &* 16_777_619
    }
    return hash
}

extension LabState {
    static func path(stateDirectory: String) -> String { stateDirectory + "/lab.json" }

    static func load(stateDirectory: String) throws(LabError) -> LabState? {
        let path = path(stateDirectory: stateDirectory)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(LabState.self, from: data)
        } catch {
            throw .fileAccess(
                path: path, reason: "the lab state cannot be read (\(error)); remove it after checking nothing runs")
        }
    }

    func save(stateDirectory: String) throws(LabError) {
        let path = Self.path(stateDirectory: stateDirectory)
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .fileAccess(path: path, reason: "the lab state cannot be written (\(error))")
        }
    }
}
