import Foundation
import LabSpec

/// Everything needed to bring up one local lab: made from the inventory
/// (`init(inventory:nat:)`), or by hand in tests.
public struct LabDefinition: Sendable, Hashable {
    /// Names the lab's runtime objects (network namespaces, cgroups, state); letters, digits, '-'.
    public var name: String
    /// The lab's IPv4 network, e.g. 198.18.0.0/24. Its first address goes to the bridge as gateway.
    public var subnet: IPv4Subnet
    /// The Linux bridge that joins the hosts (at most 15 characters).
    public var bridge: String
    /// Where the base root filesystem is built and kept between labs.
    public var cacheDirectory: String
    /// Runtime state: per-host overlay dirs, logs, PIDs. Removed by `down`.
    public var stateDirectory: String
    public var hosts: [LabHostDefinition]
    /// The private key labctl logs in with; its `.pub` is installed on every host. An ed25519
    /// pair is made with ssh-keygen when the file does not exist.
    public var loginKeyPath: String
    /// labctl writes the hosts' ed25519 host keys here (one `address ssh-ed25519 ...` line each).
    public var knownHostsPath: String
    /// Masquerade the hosts' traffic so they can reach Debian's archive.
    public var nat: Bool

    public init(
        name: String,
        subnet: IPv4Subnet,
        bridge: String,
        cacheDirectory: String = LabDefinition.defaultCacheDirectory,
        stateDirectory: String? = nil,
        hosts: [LabHostDefinition],
        loginKeyPath: String,
        knownHostsPath: String,
        nat: Bool = false
    ) {
        self.name = name
        self.subnet = subnet
        self.bridge = bridge
        self.cacheDirectory = cacheDirectory
        self.stateDirectory = stateDirectory ?? LabDefinition.defaultStateDirectory(name: name)
        self.hosts = hosts
        self.loginKeyPath = loginKeyPath
        self.knownHostsPath = knownHostsPath
        self.nat = nat
    }

    public static let defaultCacheDirectory = "/var/cache/labctl"

    /// Under /var/lib rather than /run: on most machines /run is a tmpfs, and the hosts'
    /// upper dirs (150 MB with nodejs) would then live in memory.
    public static func defaultStateDirectory(name: String) -> String {
        "/var/lib/labctl/labs/\(name)"
    }
}

public struct LabHostDefinition: Sendable, Hashable {
    /// The host's name: its hostname and the name used in `status` and `ssh`.
    public var name: String
    /// Its IPv4 address inside the lab subnet.
    public var address: String
    /// "root", or a non-root user that gets passwordless sudo (like Multipass's "ubuntu").
    public var user: String

    public init(name: String, address: String, user: String = "root") {
        self.name = name
        self.address = address
        self.user = user
    }
}

/// One host as `status` sees it.
public struct LabHostStatus: Sendable, Hashable {
    public var name: String
    public var address: String
    public var user: String
    public var running: Bool
    /// The systemd-nspawn process of the host's current boot.
    public var pid: Int32?
    /// Memory the host's processes hold resident (anonymous, shared and mapped-file pages, from
    /// its memory cgroup), without reclaimable page cache.
    public var memoryBytes: UInt64?
    /// Time since the host's current boot started.
    public var uptime: Duration?

    public init(
        name: String, address: String, user: String, running: Bool, pid: Int32?, memoryBytes: UInt64?,
        uptime: Duration?
    ) {
        self.name = name
        self.address = address
        self.user = user
        self.running = running
        self.pid = pid
        self.memoryBytes = memoryBytes
        self.uptime = uptime
    }
}

/// A line of progress for the user while `up` or `down` works.
public struct LabProgress: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A phase starts ("building the base", "booting hosts").
        case phase
        /// A detail of the phase (a line of the base build, a host that answered).
        case detail
        /// Something the user should know but that does not stop the lab.
        case warning
    }

    public var kind: Kind
    public var host: String?
    public var message: String

    public init(_ kind: Kind, host: String? = nil, _ message: String) {
        self.kind = kind
        self.host = host
        self.message = message
    }
}
