import Foundation
import LabSpec
import SSH

/// The inventory as template values. Names are snake_case like the inventory file's keys.
/// Choices (app source, node install, balancing method) are also given as booleans, because
/// Mustache can test a boolean but cannot compare strings.
public enum InventoryContext {
    public static func globals(_ inventory: Inventory) -> [String: JSONValue] {
        var root: [String: JSONValue] = [
            "name": .string(inventory.name),
            "domain": .string(inventory.domain ?? ""),
        ]
        let nginx = inventory.nginx
        root["nginx"] = .object([
            "directory": .string(nginx.directory), "conf_name": .string(nginx.confName),
            "directory_path": .string(nginx.directoryPath), "conf_path": .string(nginx.confPath),
            "method": .string(nginx.method.rawValue), "listen_port": .integer(nginx.listenPort),
            "round_robin": .bool(nginx.method == .roundRobin), "least_conn": .bool(nginx.method == .leastConn),
            "ip_hash": .bool(nginx.method == .ipHash),
        ])
        if let app = inventory.app {
            var source: [String: JSONValue] = ["kind": .string("git"), "url": .string(""), "ref": .string(""), "path": .string("")]
            switch app.source {
            case .git(let url, let ref): source = ["kind": .string("git"), "url": .string(url), "ref": .string(ref), "path": .string("")]
            case .path(let path): source = ["kind": .string("path"), "url": .string(""), "ref": .string(""), "path": .string(path)]
            }
            var node: [String: JSONValue] = [
                "install": .string(app.node.method), "apt": .bool(app.node == .apt), "version": .string(""),
                "nvm_version": .string(""), "url": .string(""), "sha256": .string(""),
                "mirror": .string(app.nodeMirror), "nvm_repo": .string(app.nvmRepository),
            ]
            switch app.node {
            case .apt: node["nvm"] = .bool(false); node["tarball"] = .bool(false)
            case .nvm(let version, let nvmVersion):
                node["nvm"] = .bool(true); node["tarball"] = .bool(false)
                node["version"] = .string(version); node["nvm_version"] = .string(nvmVersion)
            case .tarball(let url, let sha256, let version):
                node["nvm"] = .bool(false); node["tarball"] = .bool(true)
                node["url"] = .string(url); node["sha256"] = .string(sha256); node["version"] = .string(version ?? "")
            }
            root["app"] = .object([
                "name": .string(app.name), "port": .integer(app.port), "directory": .string(app.directory),
                "user": .string(app.user), "source": .object(source), "node": .object(node), "npm_registry": .string(app.npmRegistry),
                "from_git": .bool(source["kind"] == .string("git")), "from_path": .bool(source["kind"] == .string("path")),
            ])
        }
        // Mustache cannot count: the template needs to know whether an upstream is wanted.
        root["load_balanced"] = .bool(inventory.appHosts.count > 1)
        return root
    }

    public static func hostFacts(_ host: InventoryHost) -> HostFacts {
        var facts = HostFacts(name: host.name, address: host.address, roles: host.roles, vars: host.vars)
        facts.extra = [
            "port": .integer(host.port), "user": .string(host.user),
            "upstream": .object([
                "weight": .integer(host.upstream.weight), "backup": .bool(host.upstream.backup),
                "max_fails": .integer(host.upstream.maxFails), "fail_timeout": .string(host.upstream.failTimeout),
            ]),
        ]
        return facts
    }

    /// `withJumps`: false for a jump host's own options within a chain being built.
    public static func sshOptions(_ host: InventoryHost, _ inventory: Inventory, secrets: ConnectionSecrets = ConnectionSecrets(), withJumps: Bool = true)
        -> SSHOptions
    {
        var credentials: [SSHCredential] = []
        if let key = host.keyPath { credentials.append(.keyFile(path: key, passphrase: secrets.keyPassphrase)) }
        if host.agent { credentials.append(.agent(socketPath: host.fromSSHConfig.agentSocket)) }
        if let password = secrets.loginPassword { credentials.append(.password(password)) }
        let policy = secrets.hostKeyPolicy ?? host.fromSSHConfig.hostKeyChecking ?? inventory.ssh.hostKeyChecking
        var options = SSHOptions(
            endpoint: SSHEndpoint(host: host.address, port: host.port, user: host.user),
            credentials: credentials,
            knownHostsPath: secrets.knownHostsPath ?? host.fromSSHConfig.knownHostsPath ?? inventory.ssh.knownHostsPath,
            hostKeyPolicy: policy,
            connectTimeout: host.fromSSHConfig.connectTimeout ?? inventory.ssh.connectTimeout)
        if withJumps {
            options.jumps = jumps(of: host, options, inventory, secrets: secrets, visiting: [host.name])
            if let emit = secrets.trace {
                options.trace = SSHTrace(label: host.name, connecting: connectionLine(host, options, inventory, secrets: secrets), emit: emit)
            }
        }
        return options
    }

    /// How labctl connects to the host, in one line for -vvv: what a user debugging a
    /// connection compares with `ssh -v`. Names files and the way to log in, never a secret.
    public static func connectionLine(_ host: InventoryHost, _ options: SSHOptions, _ inventory: Inventory, secrets: ConnectionSecrets) -> String {
        let endpoint = options.endpoint
        let logins = options.credentials.map { credential -> String in
            switch credential {
            case .keyFile(let path, let passphrase): return "key \(path)" + (passphrase == nil ? "" : " (with its passphrase)")
            case .agent(let socket): return "ssh-agent" + (socket.map { " at \($0)" } ?? " ($SSH_AUTH_SOCK)")
            case .password: return "a password"
            }
        }
        let login: String = logins.isEmpty ? "no key, agent or password" : logins.joined(separator: ", then ")
        let knownHosts: String = "known_hosts " + options.knownHostsPath + (secrets.knownHostsPath != nil ? " (--known-hosts)" : "")
        let policy: String = "host key policy " + options.hostKeyPolicy.rawValue + (secrets.hostKeyPolicy != nil ? " (--host-key-checking)" : "")
        let jumpList: [String] = options.jumps.map(\.endpoint.description)
        let jumps: String = "jump hosts: " + (jumpList.isEmpty ? "none" : jumpList.joined(separator: " -> "))
        var parts: [String] = ["connecting to \(endpoint.host) port \(endpoint.port) as \(endpoint.user)"]
        parts.append("login: " + login)
        parts.append(knownHosts)
        parts.append(policy)
        parts.append("connect timeout \(options.connectTimeout.components.seconds) s")
        parts.append(jumps)
        if let config = inventory.ssh.configPath {
            let supplied = host.fromSSHConfig.supplied
            parts.append("SSH config \(config): " + (supplied.isEmpty ? "supplied nothing" : "supplied " + supplied.joined(separator: ", ")))
        } else {
            parts.append("SSH config: not read")
        }
        return parts.joined(separator: "; ")
    }

    /// The jump hosts in the order they are contacted. A hop that is an inventory host is reached
    /// the way the inventory says (its user, key, and for the first hop its own jump hosts, as
    /// OpenSSH follows only the first hop's ProxyJump); another address is logged in to with the
    /// host's own user and credentials unless it names its user.
    static func jumps(
        of host: InventoryHost, _ options: SSHOptions, _ inventory: Inventory, secrets: ConnectionSecrets, visiting: Set<String>
    ) -> [SSHOptions] {
        var chain: [SSHOptions] = []
        for (index, hop) in (host.jump ?? []).enumerated() {
            switch hop {
            case .host(let name):
                // The loader refuses unknown names and circles; `visiting` only guards recursion.
                guard let jumpHost = inventory.hosts.first(where: { $0.name == name }), !visiting.contains(name) else { continue }
                let jump = sshOptions(jumpHost, inventory, secrets: secrets, withJumps: false)
                if index == 0 {
                    chain += jumps(of: jumpHost, jump, inventory, secrets: secrets, visiting: visiting.union([name]))
                }
                chain.append(jump)
            case .address(let user, let address, let port):
                var jump = options
                jump.endpoint = SSHEndpoint(host: address, port: port ?? InventoryHost.defaultPort, user: user ?? host.user)
                jump.jumps = []
                chain.append(jump)
            }
        }
        return chain
    }

    /// Every host of the inventory ready to run on.
    public static func targets(_ inventory: Inventory, secrets: ConnectionSecrets = ConnectionSecrets()) -> [RunTarget] {
        let all = inventory.hosts.map(hostFacts)
        let contexts = TemplateContext.forHosts(all, globals: globals(inventory))
        return zip(inventory.hosts, zip(all, contexts)).map { host, pair in
            RunTarget(
                facts: pair.0, ssh: sshOptions(host, inventory, secrets: secrets), become: secrets.become(for: host),
                context: pair.1)
        }
    }
}
