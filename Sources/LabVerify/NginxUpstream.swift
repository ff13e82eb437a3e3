import Foundation
import LabSpec

/// The load balancing nginx really runs, read from `nginx -T`: the upstream that the lab's
/// server block proxies to, with its method and each server's parameters. verify judges the
/// distribution by it and reports where it differs from the inventory.
///
/// Read by hand: nginx's config is a small grammar (words, `;`, blocks, `#` comments, quotes)
/// and no Swift library reads it; only the parts an upstream needs are understood.
public struct NginxUpstream: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        /// As nginx has it: `address:port`, an IPv6 address in brackets.
        public var endpoint: String
        public var weight = 1
        public var backup = false
        public var down = false
        public var maxFails = 1
        /// nginx's default is 10s.
        public var failTimeout = "10s"
    }

    public var name: String
    /// `round_robin` when the block names no method.
    public var method: String
    public var servers: [Server]

    /// nginx's words, with `;`, `{` and `}` as words of their own; comments dropped, quotes
    /// and backslash escapes undone.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var escaped = false
        var comment = false
        func flush() {
            if !current.isEmpty { words.append(current) }
            current = ""
        }
        for character in text {
            if comment {
                if character == "\n" { comment = false }
                continue
            }
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if character == "\\" {
                escaped = true
                continue
            }
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
                continue
            }
            switch character {
            case "\"", "'":
                quote = character
            case "#" where current.isEmpty:
                comment = true
            case ";", "{", "}":
                flush()
                words.append(String(character))
            case _ where character.isWhitespace:
                flush()
            default:
                current.append(character)
            }
        }
        flush()
        return words
    }

    /// One directive: its words, and the directives of its block when it has one.
    struct Directive {
        var words: [String]
        var block: [Directive]?
    }

    static func directives(_ words: [String]) -> [Directive] {
        var index = 0
        func level() -> [Directive] {
            var list: [Directive] = []
            var current: [String] = []
            while index < words.count {
                let word = words[index]
                index += 1
                switch word {
                case ";":
                    if !current.isEmpty { list.append(Directive(words: current, block: nil)) }
                    current = []
                case "{":
                    list.append(Directive(words: current, block: level()))
                    current = []
                case "}":
                    return list
                default:
                    current.append(word)
                }
            }
            return list
        }
        return level()
    }

    /// The upstream that the server block for `domain` on `port` proxies `/` to, in the
    /// configuration `nginx -T` printed; nil when there is none (a single server behind
    /// proxy_pass, or no server block for the domain).
    public static func live(in dump: String, domain: String, port: Int) -> NginxUpstream? {
        let top = directives(words(dump))
        var upstreams: [String: NginxUpstream] = [:]
        var servers: [Directive] = []
        func walk(_ list: [Directive]) {
            for directive in list {
                guard let block = directive.block else { continue }
                switch directive.words.first {
                case "upstream"? where directive.words.count == 2:
                    upstreams[directive.words[1]] = upstream(named: directive.words[1], block)
                case "server"?:
                    servers.append(directive)
                default:
                    walk(block)
                }
            }
        }
        walk(top)
        for server in servers {
            let block = server.block ?? []
            let names = block.filter { $0.words.first == "server_name" }.flatMap { $0.words.dropFirst() }
            let listens = block.filter { $0.words.first == "listen" }.compactMap { $0.words.dropFirst().first }
            let listensHere = listens.isEmpty ? port == 80 : listens.contains { listen in
                listen == String(port) || listen.hasSuffix(":\(port)")
            }
            guard names.contains(domain), listensHere else { continue }
            for location in block where location.words.first == "location" {
                for directive in location.block ?? [] where directive.words.first == "proxy_pass" && directive.words.count == 2 {
                    var target = directive.words[1]
                    for scheme in ["http://", "https://"] where target.hasPrefix(scheme) { target.removeFirst(scheme.count) }
                    let name = target.split(separator: "/", maxSplits: 1).first.map(String.init) ?? target
                    if let upstream = upstreams[name] { return upstream }
                }
            }
        }
        return nil
    }

    static func upstream(named name: String, _ block: [Directive]) -> NginxUpstream {
        var method = "round_robin"
        var servers: [Server] = []
        for directive in block {
            guard let keyword = directive.words.first else { continue }
            switch keyword {
            case "least_conn", "ip_hash", "random", "least_time":
                method = keyword
            case "hash":
                method = "hash"
            case "server" where directive.words.count >= 2:
                var server = Server(endpoint: directive.words[1])
                for parameter in directive.words.dropFirst(2) {
                    let parts = parameter.split(separator: "=", maxSplits: 1).map(String.init)
                    switch (parts[0], parts.count == 2 ? parts[1] : nil) {
                    case ("weight", let value?): server.weight = Int(value) ?? server.weight
                    case ("max_fails", let value?): server.maxFails = Int(value) ?? server.maxFails
                    case ("fail_timeout", let value?): server.failTimeout = value
                    case ("backup", nil): server.backup = true
                    case ("down", nil): server.down = true
                    default: break
                    }
                }
                servers.append(server)
            default:
                break
            }
        }
        return NginxUpstream(name: name, method: method, servers: servers)
    }

    /// What the inventory asks for, as nginx would write it.
    public static func wanted(_ inventory: Inventory) -> (method: String, servers: [Server]) {
        let servers = inventory.appHosts.map { host in
            Server(
                endpoint: ValueForm.hostInURL(host.address) + ":\(inventory.app?.port ?? 3000)",
                weight: host.upstream.weight, backup: host.upstream.backup, down: false,
                maxFails: host.upstream.maxFails, failTimeout: host.upstream.failTimeout)
        }
        return (inventory.nginx.method.rawValue, servers)
    }

    /// Each way the live upstream differs from the inventory, as "what: nginx X, the inventory Y".
    public func differences(from inventory: Inventory) -> [String] {
        let wanted = Self.wanted(inventory)
        var found: [String] = []
        if method != wanted.method { found.append("method: nginx runs \(method), the inventory says \(wanted.method)") }
        let live = Dictionary(servers.map { ($0.endpoint, $0) }, uniquingKeysWith: { first, _ in first })
        let asked = Dictionary(wanted.servers.map { ($0.endpoint, $0) }, uniquingKeysWith: { first, _ in first })
        for server in wanted.servers where live[server.endpoint] == nil {
            found.append("server \(server.endpoint): in the inventory, not in nginx's upstream")
        }
        for server in servers where asked[server.endpoint] == nil {
            found.append("server \(server.endpoint): in nginx's upstream, not in the inventory")
        }
        for server in wanted.servers {
            guard let running = live[server.endpoint] else { continue }
            var parts: [String] = []
            if running.weight != server.weight { parts.append("weight \(running.weight) in nginx, \(server.weight) in the inventory") }
            if running.backup != server.backup { parts.append(running.backup ? "backup in nginx only" : "backup in the inventory only") }
            if running.maxFails != server.maxFails { parts.append("max_fails \(running.maxFails) in nginx, \(server.maxFails) in the inventory") }
            if NginxTime.parse(running.failTimeout) != NginxTime.parse(server.failTimeout) {
                parts.append("fail_timeout \(running.failTimeout) in nginx, \(server.failTimeout) in the inventory")
            }
            if running.down { parts.append("marked down in nginx") }
            if !parts.isEmpty { found.append("server \(server.endpoint): " + parts.joined(separator: ", ")) }
        }
        return found
    }
}
