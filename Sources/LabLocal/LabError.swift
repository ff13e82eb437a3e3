/// Why the lab could not be brought up, inspected or taken down. Each case renders as one
/// sentence that says what is wrong and what to do.
public enum LabError: Error, Sendable, Hashable, CustomStringConvertible {
    case notRoot(action: String)
    /// Tools are missing and installing them failed (or was not possible).
    case missingTools(packages: [String], reason: String)
    case invalidName(field: String, value: String, rule: String)
    case unusableSubnet(subnet: String, range: String, why: String)
    case subnetTooSmall(subnet: String, hosts: Int)
    case subnetCollides(subnet: String, existing: String, where: String)
    case invalidAddress(host: String, address: String)
    case addressOutsideSubnet(host: String, address: String, subnet: String)
    case reservedAddress(host: String, address: String, role: String)
    case duplicateAddress(address: String, hosts: [String])
    case duplicateHostName(String)
    case noHosts
    case severalLoginKeys([String])
    case noLoginKey
    case labHostPort(host: String, port: Int)
    case upWithOtherNetwork(lab: String, subnet: String, bridge: String)
    case unsupportedCgroups(layout: String)
    case commandFailed(command: String, status: String, output: String)
    case baseBuildFailed(output: String)
    case baseInUse(base: String, mount: String)
    case hostDidNotStart(host: String, log: String)
    case hostNotReachable(host: String, address: String, seconds: Int, detail: String)
    case fileAccess(path: String, reason: String)
    case unknownHost(String, known: [String])

    /// Whether the inventory or the command line is wrong (labctl exits 4), rather than this
    /// machine failing to run the lab (5).
    public var isBadInput: Bool {
        switch self {
        case .invalidName, .unusableSubnet, .subnetTooSmall, .invalidAddress, .addressOutsideSubnet, .reservedAddress,
            .duplicateAddress, .duplicateHostName, .noHosts, .unknownHost, .severalLoginKeys, .noLoginKey, .labHostPort:
            return true
        default:
            return false
        }
    }

    public var description: String {
        switch self {
        case .notRoot(let action):
            return "\(action) needs root (network namespaces, mounts and cgroups); run it again with sudo"
        case .missingTools(let packages, let reason):
            return "the lab needs \(packages.joined(separator: ", ")), which could not be installed (\(reason)); "
                + "install them with: apt-get update && apt-get install -y \(packages.joined(separator: " "))"
        case .invalidName(let field, let value, let rule):
            return "the \(field) \"\(value)\" is not usable: \(rule)"
        case .unusableSubnet(let subnet, let range, let why):
            return "the lab subnet \(subnet) is in \(range), the \(why) range, which no lab network may use; pick a private range such as 198.18.42.0/24 or 10.42.0.0/24"
        case .subnetTooSmall(let subnet, let hosts):
            return "the lab subnet \(subnet) has no room for a gateway and \(hosts) hosts; use a larger one, e.g. a /24"
        case .subnetCollides(let subnet, let existing, let place):
            return "the lab subnet \(subnet) overlaps \(existing) (\(place)) on this machine; "
                + "choose another subnet in the inventory's lab section, e.g. in 198.18.0.0/15"
        case .invalidAddress(let host, let address):
            return "host \(host): the address \"\(address)\" is not an IPv4 address"
        case .addressOutsideSubnet(let host, let address, let subnet):
            return "host \(host): the address \(address) is outside the lab subnet \(subnet); "
                + "give it an address inside it or change the subnet"
        case .reservedAddress(let host, let address, let role):
            return "host \(host): the address \(address) is the subnet's \(role) address; "
                + "give it another address in the subnet"
        case .duplicateAddress(let address, let hosts):
            return "hosts \(hosts.joined(separator: " and ")) share the address \(address); give each its own"
        case .duplicateHostName(let name):
            return "two hosts are named \(name); host names must be unique"
        case .unsupportedCgroups(let layout):
            return "this machine's cgroups are laid out as \(layout), and the local lab needs the hybrid "
                + "layout (a cgroup v1 name=systemd hierarchy, cgroup2 at /sys/fs/cgroup/unified and the v1 "
                + "memory controller); run the lab in such a machine or container"
        case .upWithOtherNetwork(let lab, let subnet, let bridge):
            return "the lab \(lab) is up with subnet \(subnet) on bridge \(bridge), not what the inventory says now; "
                + "run `labctl lab down` first, then `labctl lab up`"
        case .noHosts:
            return "the lab has no hosts; add hosts to the inventory"
        case .severalLoginKeys(let keys):
            return "the lab installs one login key on every host, but the inventory names several (\(keys.joined(separator: ", "))); use one key in `defaults`"
        case .noLoginKey:
            return "the lab needs a key file to install on the hosts; set `defaults.key` in the inventory"
        case .labHostPort(let host, let port):
            return "host \(host): lab hosts listen on port 22, but the inventory says \(port)"
        case .commandFailed(let command, let status, let output):
            let tail = output.split(separator: "\n").suffix(3).joined(separator: " | ")
            return "`\(command)` \(status)" + (tail.isEmpty ? "" : ": \(tail)")
        case .baseBuildFailed(let output):
            let tail = output.split(separator: "\n").suffix(5).joined(separator: " | ")
            return "building the base root filesystem failed (\(tail)); fix the cause and run `labctl lab up` again"
        case .baseInUse(let base, let mount):
            return "the base \(base) cannot be rebuilt while lab hosts run on it (\(mount)); "
                + "run `labctl lab down` for every lab first"
        case .hostDidNotStart(let host, let log):
            let tail = log.split(separator: "\n").suffix(5).joined(separator: " | ")
            return "host \(host) did not start: systemd-nspawn exited (\(tail))"
        case .hostNotReachable(let host, let address, let seconds, let detail):
            return "host \(host) (\(address)) did not answer over SSH within \(seconds) s (\(detail)); "
                + "see its log with `labctl lab status` and the log file in the lab's state directory"
        case .fileAccess(let path, let reason):
            return "\(path): \(reason)"
        case .unknownHost(let name, let known):
            return "there is no lab host named \(name); the hosts are \(known.joined(separator: ", "))"
        }
    }
}
