import Foundation
import LabSpec
import SSH

/// A host the user's SSH config says something labctl cannot follow about, or a config that
/// OpenSSH itself would refuse: bad input, named with the host and the file.
public struct SSHConfigProblem: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var message: String

    public var description: String { "\(host): \(message)" }
}

/// The inventory as the user's OpenSSH client config completes it: each host looked up the way
/// `ssh ADDRESS` would look it up, the config filling in what the inventory does not set
/// itself (see docs/inventory.md, "Jump hosts and the SSH config").
public enum SSHConfigApplication {
    public struct Applied: Sendable {
        public var inventory: Inventory
        /// Options the config sets for a host that labctl does not use: for `-v` output.
        public var notes: [String]
    }

    public static func apply(
        to inventory: Inventory, home: String = Self.home, localUser: String = Self.localUser
    ) throws(SSHConfigProblem) -> Applied {
        guard let path = inventory.ssh.configPath else { return Applied(inventory: inventory, notes: []) }
        var applied = inventory
        var notes: [String] = []
        for (index, host) in inventory.hosts.enumerated() {
            let found: SSHConfigResolution
            do {
                found = try SSHConfig.resolve(host: host.address, path: path, home: home, localUser: localUser)
            } catch {
                throw SSHConfigProblem(
                    host: host.name,
                    message: "\(error.description) (labctl reads \(path) as ssh does; fix that line, or set the inventory's ssh.config to \"none\")")
            }
            applied.hosts[index] = try complete(host, with: found, inventory: inventory, path: path, home: home, localUser: localUser)
            let unused = found.unsupported.filter { !["proxycommand"].contains($0) }
            if !unused.isEmpty {
                notes.append("\(host.name): \(path) sets \(unused.joined(separator: ", ")) for \(host.address), which labctl does not use")
            }
        }
        return Applied(inventory: applied, notes: notes)
    }

    static func complete(
        _ host: InventoryHost, with found: SSHConfigResolution, inventory: Inventory, path: String, home: String, localUser: String
    ) throws(SSHConfigProblem) -> InventoryHost {
        var host = host
        if let command = found.proxyCommand, command != "none" {
            throw SSHConfigProblem(
                host: host.name,
                message: "\(path) gives \(host.address) a ProxyCommand, which labctl does not run; use ProxyJump there, or \"jump\" in the inventory")
        }
        var supplied: [String] = []
        if let name = found.hostName, name != host.address { host.address = name; supplied.append("address") }
        if !host.given.contains(.user), let user = found.user { host.user = user; supplied.append("user") }
        if !host.given.contains(.port), let port = found.port { host.port = port; supplied.append("port") }
        if !host.given.contains(.key) {
            let files = found.identityFiles.filter { $0 != "none" }
            // ssh offers each key that exists, in order; labctl logs in with one key file, the first.
            if let key = files.first(where: { FileManager.default.fileExists(atPath: $0) }) ?? files.first {
                host.keyPath = key
                supplied.append("key")
            }
            switch found.identityAgent {
            case nil, "SSH_AUTH_SOCK"?:
                break
            case "none"?:
                host.agent = false
                supplied.append("agent")
            case let socket?:
                host.agent = true
                host.fromSSHConfig.agentSocket = socket
                supplied.append("agent")
            }
            if found.identitiesOnly == true, host.keyPath != nil { host.agent = false }
        }
        if !inventory.ssh.given.contains(.knownHosts), let file = found.userKnownHostsFiles.first, file != "none" {
            host.fromSSHConfig.knownHostsPath = file
            supplied.append("known_hosts")
        }
        if !inventory.ssh.given.contains(.hostKeyChecking), let mode = found.strictHostKeyChecking {
            // labctl never accepts a changed key: "no" records unknown keys, as accept-new does.
            host.fromSSHConfig.hostKeyChecking = ["accept-new", "no"].contains(mode) ? .acceptNew : .strict
            supplied.append("host key policy")
        }
        if !inventory.ssh.given.contains(.connectTimeout), let seconds = found.connectTimeout, seconds > 0 {
            host.fromSSHConfig.connectTimeout = .seconds(seconds)
            supplied.append("connect timeout")
        }
        if host.jump == nil, let proxyJump = found.proxyJump {
            host.jump = try jumps(proxyJump, of: host, path: path, home: home, localUser: localUser)
            supplied.append("jump hosts")
        }
        host.fromSSHConfig.supplied = supplied
        return host
    }

    /// ProxyJump's hops are ssh names: each is looked up in the config too (its HostName, User
    /// and Port), as ssh does when it connects to it.
    static func jumps(_ text: String, of host: InventoryHost, path: String, home: String, localUser: String)
        throws(SSHConfigProblem) -> [InventoryHost.Jump]
    {
        if text == "none" { return [] }
        var chain: [InventoryHost.Jump] = []
        for part in text.split(separator: ",") {
            guard case .address(let user, let name, let port)? = InventoryHost.Jump.parse(String(part), inventoryNames: false) else {
                throw SSHConfigProblem(host: host.name, message: "\(path) gives \(host.address) the jump host '\(part)', which labctl cannot read as [user@]host[:port]")
            }
            let hop: SSHConfigResolution
            do {
                hop = try SSHConfig.resolve(host: name, path: path, home: home, localUser: localUser)
            } catch {
                throw SSHConfigProblem(host: host.name, message: "\(error.description) (while reading the jump host \(name))")
            }
            chain.append(.address(user: user ?? hop.user, host: hop.hostName ?? name, port: port ?? hop.port))
        }
        return chain
    }

    /// ssh takes the home folder and the user from the passwd entry, not from $HOME.
    public static var home: String {
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return NSHomeDirectory()
    }

    public static var localUser: String {
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return NSUserName()
    }
}
