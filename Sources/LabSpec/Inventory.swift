import Foundation
import SSH

/// The lab as `inventory.json` describes it: its machines and how to reach them, the domain,
/// the app, nginx and the local lab's network. Built by `InventoryLoader`, which checks every
/// field; all paths in it are absolute (resolved against `baseDirectory`, `~` expanded).
public struct Inventory: Sendable, Hashable {
    /// The role of the host(s) running nginx.
    public static let proxyRole = "proxy"
    /// The role of the hosts running the app (the nginx upstream servers).
    public static let appRole = "app"

    public var name: String
    /// The lab's web domain (nginx `server_name`, the hosts-file entry). Required when `app` is set.
    public var domain: String?
    /// In the order of the file.
    public var hosts: [InventoryHost]
    public var ssh: SSHSettings
    public var lab: LabSettings
    /// Nil for an inventory that only lists machines (enough for `ping` and `exec`).
    public var app: AppSettings?
    public var nginx: NginxSettings
    /// The folder relative paths of the file were resolved against (the file's own folder).
    public var baseDirectory: URL
    /// The file this inventory was loaded from, if it came from one.
    public var file: URL?

    public init(
        name: String,
        domain: String? = nil,
        hosts: [InventoryHost],
        ssh: SSHSettings = SSHSettings(),
        lab: LabSettings = LabSettings(),
        app: AppSettings? = nil,
        nginx: NginxSettings = NginxSettings(),
        baseDirectory: URL,
        file: URL? = nil
    ) {
        self.name = name
        self.domain = domain
        self.hosts = hosts
        self.ssh = ssh
        self.lab = lab
        self.app = app
        self.nginx = nginx
        self.baseDirectory = baseDirectory
        self.file = file
    }

    // MARK: - SSH

    public struct SSHSettings: Sendable, Hashable {
        /// Absolute path of the OpenSSH known_hosts file.
        public var knownHostsPath: String
        public var hostKeyChecking: HostKeyPolicy
        public var connectTimeout: Duration
        /// The OpenSSH client config read for each host (`ssh.config`); nil for `"none"`.
        public var configPath: String?
        /// Which of the settings above the inventory gives itself: the SSH config fills in the others.
        public var given: Given

        public struct Given: OptionSet, Sendable, Hashable {
            public let rawValue: Int
            public init(rawValue: Int) { self.rawValue = rawValue }
            public static let knownHosts = Given(rawValue: 1)
            public static let hostKeyChecking = Given(rawValue: 2)
            public static let connectTimeout = Given(rawValue: 4)
            public static let all: Given = [.knownHosts, .hostKeyChecking, .connectTimeout]
        }

        public init(
            knownHostsPath: String = SSHSettings.defaultKnownHostsPath,
            hostKeyChecking: HostKeyPolicy = .strict,
            connectTimeout: Duration = .seconds(10),
            configPath: String? = nil,
            given: Given = .all
        ) {
            self.knownHostsPath = knownHostsPath
            self.hostKeyChecking = hostKeyChecking
            self.connectTimeout = connectTimeout
            self.configPath = configPath
            self.given = given
        }

        public static var defaultConfigPath: String {
            InventoryPaths.expandTilde("~/.ssh/config")
        }

        public static var defaultKnownHostsPath: String {
            InventoryPaths.expandTilde("~/.ssh/known_hosts")
        }
    }

    // MARK: - Local lab

    /// The hosts that lie outside `lab.subnet`. An inventory of the local lab (`labctl lab`) has
    /// hosts and none outside it: the one rule for telling a lab inventory from one of real
    /// machines, whose hosts `labctl lab` must not make into containers.
    public var hostsOutsideLabSubnet: [InventoryHost] {
        hosts.filter { !lab.subnet.contains($0.address) }
    }

    public var isLocalLab: Bool { !hosts.isEmpty && hostsOutsideLabSubnet.isEmpty }

    public struct LabSettings: Sendable, Hashable {
        /// The lab hosts' network; the bridge takes its first address (`subnet.gateway`).
        public var subnet: IPv4Subnet
        /// Name of the bridge on the machine that the hosts' veths join.
        public var bridge: String
        /// Absolute path of the folder holding the cached base system.
        public var cachePath: String

        /// In 198.18.0.0/15 (reserved for benchmarks, RFC 2544), so it does not collide with
        /// home, office or VM networks.
        public static let defaultSubnet = IPv4Subnet(cidr: "198.18.42.0/24")!
        public static let defaultBridge = "labctl0"
        public static let defaultCachePath = "/var/cache/labctl"

        public init(
            subnet: IPv4Subnet = LabSettings.defaultSubnet,
            bridge: String = LabSettings.defaultBridge,
            cachePath: String = LabSettings.defaultCachePath
        ) {
            self.subnet = subnet
            self.bridge = bridge
            self.cachePath = cachePath
        }
    }

    // MARK: - App

    public struct AppSettings: Sendable, Hashable {
        /// Also the name of its systemd unit (`<name>.service`).
        public var name: String
        public var port: Int
        /// Absolute path on the app servers where the app lives.
        public var directory: String
        /// The user the app runs as (and, with nvm, the user nvm is installed for).
        public var user: String
        public var source: AppSource
        public var node: NodeInstall
        /// Where Node downloads come from (nvm's `NVM_NODEJS_ORG_MIRROR`, the tarball's base):
        /// schools and companies often have their own, and the tests have one on the lab's bridge.
        public var nodeMirror: String
        /// Where nvm is cloned from.
        public var nvmRepository: String
        /// The registry `npm install` uses.
        public var npmRegistry: String

        public static let defaultGitURL = "https://github.com/dumbwaysdev/wayshub-frontend.git"
        public static let defaultNodeMirror = "https://nodejs.org/dist"
        public static let defaultNVMRepository = "https://github.com/nvm-sh/nvm.git"
        public static let defaultNPMRegistry = "https://registry.npmjs.org/"

        public init(
            name: String = "wayshub",
            port: Int = 3000,
            directory: String? = nil,
            user: String = "root",
            source: AppSource = .git(url: AppSettings.defaultGitURL, ref: "main"),
            node: NodeInstall = .nvm(version: NodeInstall.defaultNodeVersion, nvmVersion: NodeInstall.defaultNVMVersion),
            nodeMirror: String = AppSettings.defaultNodeMirror,
            nvmRepository: String = AppSettings.defaultNVMRepository,
            npmRegistry: String = AppSettings.defaultNPMRegistry
        ) {
            self.name = name
            self.port = port
            self.directory = directory ?? "/opt/\(name)"
            self.user = user
            self.source = source
            self.node = node
            self.nodeMirror = nodeMirror
            self.nvmRepository = nvmRepository
            self.npmRegistry = npmRegistry
        }
    }

    public enum AppSource: Sendable, Hashable {
        /// Cloned on each app server.
        case git(url: String, ref: String)
        /// A folder on this machine (absolute path), uploaded over SSH.
        case path(String)
    }

    public enum NodeInstall: Sendable, Hashable {
        public static let defaultNodeVersion = "16"
        public static let defaultNVMVersion = "0.39.7"

        /// The distribution's `nodejs` package.
        case apt
        /// nvm `nvmVersion` installed for the app's user, then `nvm install <version>`.
        case nvm(version: String, nvmVersion: String)
        /// An official binary tarball (`.tar.gz`/`.tar.xz`) from `url`, checked against `sha256`
        /// (lowercase hex). `version` is informational; nil when the inventory does not say.
        case tarball(url: String, sha256: String, version: String?)

        /// The value of `node.install`.
        public var method: String {
            switch self {
            case .apt: return "apt"
            case .nvm: return "nvm"
            case .tarball: return "tarball"
            }
        }
    }

    // MARK: - nginx

    public enum BalancingMethod: String, Sendable, Hashable, CaseIterable {
        case roundRobin = "round_robin"
        case leastConn = "least_conn"
        case ipHash = "ip_hash"
    }

    public struct NginxSettings: Sendable, Hashable {
        /// The folder under /etc/nginx that holds the lab's config (the course's `dumbways`).
        public var directory: String
        /// The config file's name in that folder.
        public var confName: String
        public var method: BalancingMethod
        /// The port nginx listens on for the domain.
        public var listenPort: Int

        public init(
            directory: String = "dumbways",
            confName: String = "my.reverse-proxy.conf",
            method: BalancingMethod = .roundRobin,
            listenPort: Int = 80
        ) {
            self.directory = directory
            self.confName = confName
            self.method = method
            self.listenPort = listenPort
        }

        /// `/etc/nginx/<directory>`.
        public var directoryPath: String { "/etc/nginx/\(directory)" }
        /// `/etc/nginx/<directory>/<confName>`.
        public var confPath: String { "/etc/nginx/\(directory)/\(confName)" }
    }

    // MARK: - Queries

    /// The hosts that have `role`, in file order.
    public func hosts(withRole role: String) -> [InventoryHost] {
        hosts.filter { $0.roles.contains(role) }
    }

    /// The hosts with role `proxy` (nginx), in file order.
    public var proxyHosts: [InventoryHost] { hosts(withRole: Inventory.proxyRole) }

    /// The hosts with role `app` (the app servers, nginx's upstream), in file order.
    public var appHosts: [InventoryHost] { hosts(withRole: Inventory.appRole) }

    public func host(named name: String) -> InventoryHost? {
        hosts.first { $0.name == name }
    }

    /// Every role used, in order of first appearance.
    public var roles: [String] {
        var seen = Set<String>()
        return hosts.flatMap(\.roles).filter { seen.insert($0).inserted }
    }
}

/// One machine of the inventory, with every default already applied.
public struct InventoryHost: Sendable, Hashable, Identifiable {
    /// Unique; a lowercase DNS label.
    public var name: String
    /// IPv4, IPv6 or a host name.
    public var address: String
    public var port: Int
    public var user: String
    /// Absolute path of the private key; nil when the host authenticates with the agent only.
    public var keyPath: String?
    /// Also offer the identities of the ssh-agent at `SSH_AUTH_SOCK`.
    public var agent: Bool
    /// Run privileged commands through `sudo` (for a non-root `user`).
    public var become: Bool
    /// Never empty.
    public var roles: [String]
    /// Free per-host variables for playbooks and templates.
    public var vars: [String: JSONValue]
    /// This host's options as an nginx upstream server (meaningful for app hosts).
    public var upstream: Upstream
    /// The jump hosts (OpenSSH's ProxyJump) from the inventory, the first contacted directly:
    /// nil when the inventory says nothing (the SSH config may), empty for `"none"`.
    public var jump: [Jump]?
    /// The connection settings the inventory gives itself (in the host or in `defaults`): they
    /// win over the user's SSH config, which fills in the others.
    public var given: Given
    /// What the user's SSH config sets for this host where the inventory says nothing
    /// (filled in by LabEngine's SSHConfigApplication; nil: the inventory's `ssh` settings).
    public var fromSSHConfig = FromSSHConfig()

    public struct FromSSHConfig: Sendable, Hashable {
        public var knownHostsPath: String?
        public var hostKeyChecking: HostKeyPolicy?
        public var connectTimeout: Duration?
        /// The ssh-agent socket (IdentityAgent) when not `SSH_AUTH_SOCK`.
        public var agentSocket: String?
        /// What the SSH config filled in for this host ("address", "user", "key"...), in words,
        /// for `-vvv`.
        public var supplied: [String] = []
        public init() {}
    }

    public var id: String { name }

    /// One hop of a jump chain.
    public enum Jump: Sendable, Hashable, CustomStringConvertible {
        /// One hop as ProxyJump writes it: a bare lowercase label is read as an inventory host's
        /// name (`inventoryNames: false`: never, as in an SSH config), anything else as
        /// `[user@]address[:port]` with an IPv6 address in brackets; nil when it is neither.
        public static func parse(_ text: String, inventoryNames: Bool = true) -> Jump? {
            var rest = Substring(text)
            var user: String?
            if let at = rest.lastIndex(of: "@") {
                let name = String(rest[..<at])
                guard InventorySyntax.isUserName(name) else { return nil }
                user = name
                rest = rest[rest.index(after: at)...]
            }
            var port: Int?
            var host: String
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                host = String(rest[rest.index(after: rest.startIndex)..<close])
                guard InventorySyntax.isIPv6(host) else { return nil }
                let after = rest[rest.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                    port = number
                }
            } else {
                let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count <= 2 else { return nil }
                host = String(parts[0])
                if parts.count == 2 {
                    guard let number = Int(parts[1]), (1...65535).contains(number) else { return nil }
                    port = number
                }
                guard InventorySyntax.isIPv4(host) || InventorySyntax.isHostName(host) else { return nil }
            }
            if inventoryNames, user == nil, port == nil, InventorySyntax.isLowercaseLabel(host) { return .host(host) }
            return .address(user: user, host: host, port: port)
        }

        /// Another host of the inventory, reached the way the inventory says.
        case host(String)
        /// `[user@]address[:port]` outside the inventory.
        case address(user: String?, host: String, port: Int?)

        public var description: String {
            switch self {
            case .host(let name): return name
            case .address(let user, let host, let port):
                let address = host.contains(":") ? "[\(host)]" : host
                return (user.map { $0 + "@" } ?? "") + address + (port.map { ":\($0)" } ?? "")
            }
        }
    }

    public struct Given: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let user = Given(rawValue: 1)
        public static let port = Given(rawValue: 2)
        public static let key = Given(rawValue: 4)
        public static let all: Given = [.user, .port, .key]
    }

    public static let defaultUser = "root"
    public static let defaultPort = 22
    /// Used when neither the host nor `defaults` name a key and the agent is not asked for.
    public static let defaultKey = "~/.ssh/id_ed25519"

    public init(
        name: String,
        address: String,
        port: Int = InventoryHost.defaultPort,
        user: String = InventoryHost.defaultUser,
        keyPath: String? = nil,
        agent: Bool = false,
        become: Bool = false,
        roles: [String],
        vars: [String: JSONValue] = [:],
        upstream: Upstream = Upstream(),
        jump: [Jump]? = nil,
        given: Given = .all
    ) {
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.keyPath = keyPath
        self.agent = agent
        self.become = become
        self.roles = roles
        self.vars = vars
        self.upstream = upstream
        self.jump = jump
        self.given = given
    }

    public func hasRole(_ role: String) -> Bool { roles.contains(role) }

    /// nginx `server` parameters for this host in an `upstream` block.
    public struct Upstream: Sendable, Hashable {
        public var weight: Int
        public var backup: Bool
        public var maxFails: Int
        /// An nginx time ("5s", "500ms").
        public var failTimeout: String

        /// Shorter than nginx's 10s so a server that was stopped and started again (the
        /// failover drill) is back in rotation soon.
        public static let defaultFailTimeout = "5s"

        public init(weight: Int = 1, backup: Bool = false, maxFails: Int = 1, failTimeout: String = Upstream.defaultFailTimeout) {
            self.weight = weight
            self.backup = backup
            self.maxFails = maxFails
            self.failTimeout = failTimeout
        }
    }
}

/// Path handling shared by the loader and the defaults.
enum InventoryPaths {
    static func expandTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + path.dropFirst()
    }

    /// `~` expanded, then made absolute against `base`, then normalized (no `.`/`..`).
    static func resolve(_ path: String, against base: URL) -> String {
        let expanded = expandTilde(path)
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded)
        return url.standardizedFileURL.path
    }
}
