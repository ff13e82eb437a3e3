import Foundation
import SSH

/// Turns the parsed JSON into an `Inventory`, checking each field and applying defaults. The
/// field lists here are the format: docs/inventory.md describes the same fields.
struct InventoryBuilder {
    let checker: InventoryChecker
    let base: URL

    static let topKeys = ["name", "domain", "defaults", "ssh", "lab", "hosts", "app", "nginx"]
    static let defaultsKeys = ["user", "port", "key", "agent", "become", "jump"]
    static let sshKeys = ["known_hosts", "host_key_checking", "connect_timeout", "config"]
    static let labKeys = ["subnet", "bridge", "cache"]
    static let hostKeys = ["name", "address", "port", "user", "key", "agent", "become", "jump", "roles", "vars", "upstream"]
    static let upstreamKeys = ["weight", "backup", "max_fails", "fail_timeout"]
    static let appKeys = ["name", "port", "directory", "user", "source", "node", "npm_registry"]
    static let sourceKeys = ["git", "ref", "path"]
    static let nodeKeys = ["install", "version", "nvm_version", "url", "sha256", "mirror", "nvm_repo"]
    static let nginxKeys = ["dir", "conf", "method", "listen"]

    static let addressExpectation = "an IPv4/IPv6 address or host name"

    /// Host-level values that `defaults` may set.
    private struct HostDefaults {
        var user: String?
        var port: Int?
        var key: String?
        var agent: Bool?
        var become: Bool?
        var jump: [InventoryHost.Jump]?
    }

    func build(_ root: JSONValue) -> Inventory? {
        guard let top = checker.object(root, at: "", keys: Self.topKeys, what: "a JSON object describing the lab") else {
            return nil
        }
        let name = checker.string(top, "name", expected: "a lowercase DNS label such as \"wayshub-lab\"",
                                  invalid: { "'\($0)' is not a valid lab name; expected lowercase letters, digits and '-'" },
                                  isValid: InventorySyntax.isLowercaseLabel) ?? "lab"
        let domain = checker.string(top, "domain", expected: "a domain name such as \"wayshub.lab\"",
                                    invalid: { "'\($0)' is not a valid domain name; expected a host name such as \"wayshub.lab\"" },
                                    isValid: InventorySyntax.isHostName)
        let defaults = hostDefaults(top)
        let ssh = sshSettings(top)
        let lab = labSettings(top)
        let hosts = hostList(top, defaults: defaults)
        let app = appSettings(top)
        let nginx = nginxSettings(top)

        if top.has("app") {
            if !top.has("domain") {
                checker.missing(top, "domain", expected: "a domain name such as \"wayshub.lab\" (needed by the 'app' section)")
            }
            if let hosts {
                for role in [Inventory.proxyRole, Inventory.appRole] where !hosts.contains(where: { $0.roles.contains(role) }) {
                    checker.report("hosts", "no host has role '\(role)'; an inventory with an 'app' section needs at least one")
                }
            }
        }

        guard let hosts else { return nil }
        return Inventory(name: name, domain: domain, hosts: hosts, ssh: ssh, lab: lab, app: app, nginx: nginx,
                         baseDirectory: base)
    }

    // MARK: - defaults, ssh, lab

    private func hostDefaults(_ top: CheckedObject) -> HostDefaults {
        guard let object = checker.object(top, "defaults", keys: Self.defaultsKeys) else { return HostDefaults() }
        return HostDefaults(
            user: userName(object, "user"),
            port: checker.integer(object, "port", in: 1...65535),
            key: checker.string(object, "key", expected: "a path to a private key file"),
            agent: checker.bool(object, "agent"),
            become: checker.bool(object, "become"),
            jump: jumpChain(object))
    }

    /// `jump`: "none", or a comma list of hops, each an inventory host's name or
    /// `[user@]address[:port]` (an IPv6 address in brackets), as OpenSSH's ProxyJump.
    private func jumpChain(_ object: CheckedObject) -> [InventoryHost.Jump]? {
        let expected = "\"none\", or jump hosts as OpenSSH's ProxyJump writes them: an inventory host's name or [user@]address[:port], several separated by commas"
        guard let text = checker.string(object, "jump", expected: expected) else { return nil }
        if text == "none" { return [] }
        var hops: [InventoryHost.Jump] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let hop = InventoryHost.Jump.parse(String(part)) else {
                checker.report(object.path("jump"), "'\(ValueForm.escaped(String(part)))' is not a jump host; expected \(expected)")
                return nil
            }
            hops.append(hop)
        }
        return hops
    }


    private func sshSettings(_ top: CheckedObject) -> Inventory.SSHSettings {
        var settings = Inventory.SSHSettings(configPath: Inventory.SSHSettings.defaultConfigPath, given: [])
        guard let object = checker.object(top, "ssh", keys: Self.sshKeys) else { return settings }
        if let path = checker.string(object, "known_hosts", expected: "a path to an OpenSSH known_hosts file") {
            settings.knownHostsPath = InventoryPaths.resolve(path, against: base)
        }
        if let mode = checker.choice(object, "host_key_checking", among: HostKeyPolicy.allCases.map(\.rawValue)) {
            settings.hostKeyChecking = HostKeyPolicy(rawValue: mode)!
        }
        if let seconds = checker.integer(object, "connect_timeout", in: 1...600) {
            settings.connectTimeout = .seconds(seconds)
        }
        settings.given = Inventory.SSHSettings.Given()
            .union(object.has("known_hosts") ? .knownHosts : [])
            .union(object.has("host_key_checking") ? .hostKeyChecking : [])
            .union(object.has("connect_timeout") ? .connectTimeout : [])
        if let path = checker.string(object, "config", expected: "a path to an OpenSSH client config file, or \"none\"") {
            settings.configPath = path == "none" ? nil : InventoryPaths.resolve(path, against: base)
        }
        return settings
    }

    private func labSettings(_ top: CheckedObject) -> Inventory.LabSettings {
        var settings = Inventory.LabSettings()
        guard let object = checker.object(top, "lab", keys: Self.labKeys) else { return settings }
        if let cidr = checker.string(object, "subnet", expected: "an IPv4 subnet such as \"198.18.42.0/24\"",
                                     invalid: Self.subnetProblem, isValid: { IPv4Subnet(cidr: $0) != nil }) {
            settings.subnet = IPv4Subnet(cidr: cidr)!
        }
        if let bridge = checker.string(object, "bridge", expected: "a network interface name of at most 15 characters",
                                       invalid: { "'\($0)' is not a usable interface name; expected at most 15 letters, digits, '-', '_' or '.'" },
                                       isValid: InventorySyntax.isInterfaceName) {
            settings.bridge = bridge
        }
        if let cache = checker.string(object, "cache", expected: "a folder path") {
            settings.cachePath = InventoryPaths.resolve(cache, against: base)
        }
        return settings
    }

    static func subnetProblem(_ text: String) -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])) else {
            return "'\(text)' is not an IPv4 subnet; expected CIDR notation such as \"198.18.42.0/24\""
        }
        guard let prefix = Int(parts[1]), (0...32).contains(prefix) else {
            return "'\(text)' has no valid prefix length; expected /8 to /30"
        }
        guard (8...30).contains(prefix) else {
            return "'\(text)': a /\(prefix) prefix is not usable for a lab; expected /8 to /30"
        }
        return "'\(text)' has host bits set; did you mean '\(IPv4Subnet(containing: address, prefixLength: prefix))'?"
    }

    private func userName(_ object: CheckedObject, _ key: String) -> String? {
        checker.string(object, key, expected: "a login name",
                       invalid: { "'\($0)' is not a valid login name; expected lowercase letters, digits, '-', '_' or '.'" },
                       isValid: InventorySyntax.isUserName)
    }

    // MARK: - hosts

    private func hostList(_ top: CheckedObject, defaults: HostDefaults) -> [InventoryHost]? {
        guard top.has("hosts") else {
            checker.missing(top, "hosts", expected: "a list of hosts")
            return nil
        }
        guard let items = checker.array(top, "hosts", expected: "a list of hosts") else { return nil }
        guard !items.isEmpty else {
            checker.report("hosts", "expected at least one host, got an empty list")
            return nil
        }
        var hosts: [InventoryHost] = []
        var nameOwners: [String: Int] = [:]
        var addressOwners: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "hosts[\(index)]"
            guard let host = self.host(item, at: path, defaults: defaults) else { continue }
            if let owner = nameOwners[host.name] {
                checker.report("\(path).name", "'\(ValueForm.escaped(host.name))' is already the name of hosts[\(owner)]")
            } else {
                nameOwners[host.name] = index
            }
            let endpoint = "\(Self.canonicalAddress(host.address)) \(host.port)"
            if let owner = addressOwners[endpoint] {
                checker.report("\(path).address", "'\(ValueForm.escaped(host.address))' port \(host.port) is already used by hosts[\(owner)] ('\(hostName(items[owner]))')")
            } else {
                addressOwners[endpoint] = index
            }
            hosts.append(host)
        }
        guard hosts.count == items.count else { return nil }
        checkJumps(hosts)
        return hosts
    }

    /// Jump hosts named by their inventory name must exist, and no chain may come back to
    /// where it started.
    private func checkJumps(_ hosts: [InventoryHost]) {
        let byName = Dictionary(hosts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, host) in hosts.enumerated() {
            for case .host(let name) in host.jump ?? [] where byName[name] == nil {
                let known = hosts.map(\.name).joined(separator: ", ")
                checker.report("hosts[\(index)].jump", "'\(name)' is not a host of the inventory (hosts: \(known)); give another host's name or [user@]address[:port]")
            }
            var seen: [String] = [host.name]
            var next = host.jump ?? []
            while case .host(let name)? = next.first(where: { if case .host = $0 { return true }; return false }) {
                if seen.contains(name) {
                    checker.report("hosts[\(index)].jump", "the jump hosts go round in a circle (\((seen + [name]).joined(separator: " -> "))); a host cannot be reached through itself")
                    break
                }
                seen.append(name)
                next = byName[name]?.jump ?? []
            }
        }
    }

    private func hostName(_ item: JSONValue) -> String {
        if case .object(let fields) = item, case .string(let name)? = fields["name"] { return name }
        return "?"
    }

    /// The message for a bad address, with a hint for the two usual slips: brackets around an
    /// IPv6 address (a URL habit) and a port glued to the address.
    static func addressProblem(_ text: String) -> String {
        let problem = "'\(ValueForm.escaped(text))' is not \(addressExpectation)"
        if text.hasPrefix("["), text.hasSuffix("]"), InventorySyntax.isIPv6(String(text.dropFirst().dropLast())) {
            return problem + "; write an IPv6 address without brackets"
        }
        if let colon = text.lastIndex(of: ":"), Int(text[text.index(after: colon)...]) != nil {
            let host = String(text[..<colon])
            if InventorySyntax.isIPv4(host) || InventorySyntax.isHostName(host) {
                return problem + "; give the port in 'port'"
            }
        }
        return problem
    }

    /// Addresses compared case-insensitively, IPv6 in canonical form, so one machine written
    /// two ways is still seen as a duplicate.
    static func canonicalAddress(_ address: String) -> String {
        InventorySyntax.canonicalIPv6(address) ?? address.lowercased()
    }

    private func host(_ item: JSONValue, at path: String, defaults: HostDefaults) -> InventoryHost? {
        guard let object = checker.object(item, at: path, keys: Self.hostKeys, what: "a host object") else { return nil }
        let name = checker.string(object, "name", required: true, expected: "a lowercase DNS label such as \"app1\"",
                                  invalid: { name in
                                      name == "all"
                                          ? "'all' is reserved (it selects every host); choose another name"
                                          : "'\(ValueForm.escaped(name))' is not a valid host name; expected a lowercase DNS label (a-z, 0-9, '-', at most 63 characters)"
                                  },
                                  isValid: { InventorySyntax.isLowercaseLabel($0) && $0 != "all" })
        let address = checker.string(object, "address", required: true, expected: Self.addressExpectation,
                                     invalid: Self.addressProblem,
                                     isValid: { InventorySyntax.isIPv4($0) || InventorySyntax.isIPv6($0) || InventorySyntax.isHostName($0) })
        let port = checker.integer(object, "port", in: 1...65535)
        let user = userName(object, "user")
        let key = checker.string(object, "key", expected: "a path to a private key file")
        let agent = checker.bool(object, "agent")
        let become = checker.bool(object, "become")
        let jump = jumpChain(object)
        let roles = self.roles(object)
        var vars: [String: JSONValue] = [:]
        if let value = object["vars"] {
            if case .object(let fields) = value {
                vars = fields
            } else {
                checker.report(object.path("vars"), "expected an object of variables, got \(value.shortDescription)")
            }
        }
        let upstream = self.upstream(object, roles: roles)

        guard let name, let address, let roles else { return nil }
        let useAgent = agent ?? defaults.agent ?? false
        let keyPath = (key ?? defaults.key ?? (useAgent ? nil : InventoryHost.defaultKey))
            .map { InventoryPaths.resolve($0, against: base) }
        return InventoryHost(
            name: name, address: address,
            port: port ?? defaults.port ?? InventoryHost.defaultPort,
            user: user ?? defaults.user ?? InventoryHost.defaultUser,
            keyPath: keyPath, agent: useAgent,
            become: become ?? defaults.become ?? false,
            roles: roles, vars: vars, upstream: upstream,
            // A jump host that `defaults` names is reached directly itself.
            jump: jump ?? defaults.jump.map { chain in chain.contains(.host(name)) ? [] : chain },
            given: InventoryHost.Given()
                .union(user ?? defaults.user != nil ? .user : [])
                .union(port ?? defaults.port != nil ? .port : [])
                .union(key ?? defaults.key != nil || agent ?? defaults.agent != nil ? .key : []))
    }

    private func roles(_ object: CheckedObject) -> [String]? {
        let expected = "a non-empty list of role names such as [\"app\"]"
        guard object.has("roles") else {
            checker.missing(object, "roles", expected: expected)
            return nil
        }
        guard let items = checker.array(object, "roles", expected: expected) else { return nil }
        guard !items.isEmpty else {
            checker.report(object.path("roles"), "expected \(expected), got an empty list")
            return nil
        }
        var roles: [String] = []
        var valid = true
        for (index, item) in items.enumerated() {
            let path = "\(object.path("roles"))[\(index)]"
            guard case .string(let role) = item else {
                checker.report(path, "expected a role name, got \(item.shortDescription)")
                valid = false
                continue
            }
            guard InventorySyntax.isRoleName(role), role != "all" else {
                checker.report(path, role == "all"
                    ? "'all' is reserved (it selects every host); choose another role name"
                    : "'\(ValueForm.escaped(role))' is not a valid role name; expected lowercase letters, digits, '-' and '_', starting with a letter")
                valid = false
                continue
            }
            if !roles.contains(role) { roles.append(role) }
        }
        return valid ? roles : nil
    }

    private func upstream(_ host: CheckedObject, roles: [String]?) -> InventoryHost.Upstream {
        var upstream = InventoryHost.Upstream()
        guard let object = checker.object(host, "upstream", keys: Self.upstreamKeys) else { return upstream }
        if let roles, !roles.contains(Inventory.appRole) {
            checker.report(object.path, "only hosts with role '\(Inventory.appRole)' are upstream servers; remove 'upstream' or add the role")
        }
        if let weight = checker.integer(object, "weight", in: 1...Int.max) { upstream.weight = weight }
        if let backup = checker.bool(object, "backup") { upstream.backup = backup }
        if let maxFails = checker.integer(object, "max_fails", in: 0...Int.max) { upstream.maxFails = maxFails }
        if let timeout = checker.string(object, "fail_timeout", expected: "an nginx time such as \"5s\" or \"500ms\"",
                                        invalid: { "'\($0)' is not an nginx time; expected a value such as \"5s\" or \"500ms\"" },
                                        isValid: InventorySyntax.isNginxTime) {
            upstream.failTimeout = timeout
        }
        return upstream
    }

    // MARK: - app

    private func appSettings(_ top: CheckedObject) -> Inventory.AppSettings? {
        guard let object = checker.object(top, "app", keys: Self.appKeys) else { return nil }
        let name = checker.string(object, "name", expected: "a name such as \"wayshub\"",
                                  invalid: { "'\($0)' is not a valid app name; expected lowercase letters, digits, '-' and '_' (it names the systemd unit)" },
                                  isValid: InventorySyntax.isRoleName) ?? "wayshub"
        let port = checker.integer(object, "port", in: 1...65535) ?? 3000
        let directory = checker.string(object, "directory", form: .plainAbsolutePath)
        let user = userName(object, "user") ?? "root"
        let nodeObject = object["node"].flatMap { value -> CheckedObject? in
            if case .object(let fields) = value { return CheckedObject(path: object.path("node"), values: fields) }
            return nil
        }
        let mirror = nodeObject.flatMap { checker.string($0, "mirror", form: .downloadURL) }
            ?? Inventory.AppSettings.defaultNodeMirror
        let nvmRepository = nodeObject.flatMap { checker.string($0, "nvm_repo", form: .gitRepository) }
            ?? Inventory.AppSettings.defaultNVMRepository
        let registry = checker.string(object, "npm_registry", form: .httpURL) ?? Inventory.AppSettings.defaultNPMRegistry
        let trimmedMirror = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        return Inventory.AppSettings(name: name, port: port, directory: directory, user: user,
                                     source: appSource(object), node: nodeInstall(object, mirror: trimmedMirror),
                                     nodeMirror: trimmedMirror, nvmRepository: nvmRepository, npmRegistry: registry)
    }

    private func appSource(_ app: CheckedObject) -> Inventory.AppSource {
        let fallback = Inventory.AppSource.git(url: Inventory.AppSettings.defaultGitURL, ref: "main")
        guard let object = checker.object(app, "source", keys: Self.sourceKeys) else { return fallback }
        let git = checker.string(object, "git", form: .gitRepository)
        let ref = checker.string(object, "ref", form: .gitRef)
        let path = checker.string(object, "path", expected: "a path to the app's folder")
        switch (object.has("git"), object.has("path")) {
        case (true, true):
            checker.report(object.path, "give either 'git' or 'path', not both")
        case (false, false):
            checker.report(object.path, "expected 'git' (a repository URL) or 'path' (a folder on this machine)")
        case (false, true) where object.has("ref"):
            checker.report(object.path("ref"), "only used with 'git'; a 'path' source is uploaded as it is")
        default:
            break
        }
        if let git { return .git(url: git, ref: ref ?? "main") }
        if let path { return .path(InventoryPaths.resolve(path, against: base)) }
        return fallback
    }

    private func nodeInstall(_ app: CheckedObject, mirror: String) -> Inventory.NodeInstall {
        let defaultNVM = Inventory.NodeInstall.nvm(version: Inventory.NodeInstall.defaultNodeVersion,
                                                   nvmVersion: Inventory.NodeInstall.defaultNVMVersion)
        guard let object = checker.object(app, "node", keys: Self.nodeKeys) else { return defaultNVM }
        let methods = ["apt", "nvm", "tarball"]
        let method = object.has("install") ? checker.choice(object, "install", among: methods) : "nvm"
        guard let method else { return defaultNVM }

        let allowed: [String: [String]] = [
            "apt": ["install"], "nvm": ["install", "version", "nvm_version", "mirror", "nvm_repo"],
            "tarball": ["install", "version", "url", "sha256", "mirror"],
        ]
        for key in Self.nodeKeys where object.has(key) && !allowed[method]!.contains(key) {
            checker.report(object.path(key), "not used with install '\(method)'")
        }
        let nodeVersion = "a Node version such as \"16\" or \"16.20.2\""
        let isNodeVersion: (String) -> Bool = { $0.wholeMatch(of: /v?[0-9]+(\.[0-9]+){0,2}/) != nil }
        switch method {
        case "apt":
            return .apt
        case "nvm":
            let version = checker.string(object, "version", expected: nodeVersion,
                                         invalid: { "'\($0)' is not a Node version; expected \(nodeVersion) or \"lts/gallium\"" },
                                         isValid: { isNodeVersion($0) || ($0.hasPrefix("lts/") && $0.count > 4) })
            let nvmVersion = checker.string(object, "nvm_version", expected: "an nvm release such as \"0.39.7\"",
                                            invalid: { "'\($0)' is not an nvm release; expected a version such as \"0.39.7\"" },
                                            isValid: { $0.wholeMatch(of: /v?[0-9]+\.[0-9]+\.[0-9]+/) != nil })
            return .nvm(version: version ?? Inventory.NodeInstall.defaultNodeVersion,
                        nvmVersion: (nvmVersion.map { $0.hasPrefix("v") ? String($0.dropFirst()) : $0 })
                            ?? Inventory.NodeInstall.defaultNVMVersion)
        default:
            let version = checker.string(object, "version", expected: nodeVersion,
                                         invalid: { "'\($0)' is not a Node version; expected \(nodeVersion)" },
                                         isValid: isNodeVersion)
            // Without a URL, the tarball of `version` on the mirror (the .tar.gz: a minimal Debian
            // has no xz to unpack the .tar.xz).
            let url = checker.string(object, "url", required: !object.has("version"), form: .downloadURL)
            let sha256 = checker.string(object, "sha256", required: true, expected: "the tarball's SHA-256 as 64 hex digits",
                                        invalid: { "'\($0)' is not a SHA-256; expected 64 hex digits" },
                                        isValid: InventorySyntax.isSHA256)
            let bare = version.map { $0.hasPrefix("v") ? String($0.dropFirst()) : $0 }
            var derived: String?
            if url == nil, let bare {
                if bare.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+/) != nil {
                    derived = "\(mirror)/v\(bare)/node-v\(bare)-linux-x64.tar.gz"
                } else {
                    checker.report(object.path("url"), "required unless 'version' is a full version such as \"16.20.2\" (the tarball's URL is then found on the mirror)")
                }
            }
            return .tarball(url: url ?? derived ?? "", sha256: (sha256 ?? "").lowercased(), version: bare)
        }
    }

    // MARK: - nginx

    private func nginxSettings(_ top: CheckedObject) -> Inventory.NginxSettings {
        var settings = Inventory.NginxSettings()
        guard let object = checker.object(top, "nginx", keys: Self.nginxKeys) else { return settings }
        let fileName = "a single file or folder name (letters, digits, '-', '_', '.')"
        if let dir = checker.string(object, "dir", expected: fileName,
                                    invalid: { "'\($0)' is not a folder name under /etc/nginx; expected \(fileName)" },
                                    isValid: InventorySyntax.isFileName) {
            settings.directory = dir
        }
        if let conf = checker.string(object, "conf", expected: fileName,
                                     invalid: { "'\($0)' is not a file name; expected \(fileName)" },
                                     isValid: InventorySyntax.isFileName) {
            settings.confName = conf
        }
        if let method = checker.choice(object, "method", among: Inventory.BalancingMethod.allCases.map(\.rawValue)) {
            settings.method = Inventory.BalancingMethod(rawValue: method)!
        }
        if let port = checker.integer(object, "listen", in: 1...65535) {
            settings.listenPort = port
        }
        return settings
    }
}
