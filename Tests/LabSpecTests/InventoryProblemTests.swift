import Foundation
import Testing
@testable import LabSpec

/// One bad inventory and exactly what the user must be told about it.
struct BadInventory: CustomTestStringConvertible, Sendable {
    let label: String
    let json: String
    let expected: [String]

    init(_ label: String, _ json: String, _ expected: String...) {
        self.label = label
        self.json = json
        self.expected = expected
    }

    var testDescription: String { label }
}

let standardHosts = """
    { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
    { "name": "app1", "address": "198.18.42.11", "roles": ["app"] }
    """

let badInventories: [BadInventory] = [
    BadInventory("port given as a string", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.11", "port": "22", "roles": ["app"] }
        """),
        #"hosts[1].port: expected an integer from 1 to 65535, got "22""#),
    BadInventory("port out of range", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "port": 70000, "roles": ["proxy"] }
        """),
        "hosts[0].port: expected an integer from 1 to 65535, got 70000"),
    BadInventory("fractional port", inventoryJSON(extra: #", "defaults": { "port": 22.5 }"#),
        "defaults.port: expected an integer from 1 to 65535, got 22.5"),
    BadInventory("impossible IPv4 address", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"] },
        { "name": "app2", "address": "300.1.1.1", "roles": ["app"] }
        """),
        "hosts[2].address: '300.1.1.1' is not an IPv4/IPv6 address or host name"),
    BadInventory("IPv6 address in brackets", inventoryJSON(hosts: #"{ "name": "a", "address": "[fd00::1]", "roles": ["x"] }"#),
        "hosts[0].address: '[fd00::1]' is not an IPv4/IPv6 address or host name; write an IPv6 address without brackets"),
    BadInventory("port glued to the address", inventoryJSON(hosts: #"{ "name": "a", "address": "10.0.0.1:2222", "roles": ["x"] }"#),
        "hosts[0].address: '10.0.0.1:2222' is not an IPv4/IPv6 address or host name; give the port in 'port'"),
    BadInventory("misspelt field with a hint", inventoryJSON(hosts: """
        { "name": "proxy", "adress": "198.18.42.10", "roles": ["proxy"] }
        """),
        "hosts[0].adress: unknown field; did you mean 'address'?",
        "hosts[0].address: required field is missing; expected an IPv4/IPv6 address or host name"),
    BadInventory("camelCase spelling of a snake_case field", inventoryJSON(extra: #", "ssh": { "knownHosts": "kh" }"#),
        "ssh.knownHosts: unknown field; did you mean 'known_hosts'?"),
    BadInventory("unknown field with nothing close", inventoryJSON(extra: #", "colour": "blue""#),
        "colour: unknown field; expected one of: name, domain, defaults, ssh, lab, hosts, app, nginx"),
    BadInventory("two hosts with one name", inventoryJSON(hosts: """
        { "name": "app1", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"] }
        """),
        "hosts[1].name: 'app1' is already the name of hosts[0]"),
    BadInventory("two hosts with one address and port", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.10", "port": 22, "roles": ["app"] }
        """),
        "hosts[1].address: '198.18.42.10' port 22 is already used by hosts[0] ('proxy')"),
    BadInventory("IPv6 written two ways is one address", inventoryJSON(hosts: """
        { "name": "a", "address": "fd00::1", "roles": ["x"] },
        { "name": "b", "address": "FD00:0:0::1", "roles": ["x"] }
        """),
        "hosts[1].address: 'FD00:0:0::1' port 22 is already used by hosts[0] ('a')"),
    BadInventory("subnet with host bits set", inventoryJSON(extra: #", "lab": { "subnet": "198.18.42.7/24" }"#),
        "lab.subnet: '198.18.42.7/24' has host bits set; did you mean '198.18.42.0/24'?"),
    BadInventory("subnet that is not CIDR", inventoryJSON(extra: #", "lab": { "subnet": "198.18.42.0" }"#),
        #"lab.subnet: '198.18.42.0' is not an IPv4 subnet; expected CIDR notation such as "198.18.42.0/24""#),
    BadInventory("subnet too small for hosts", inventoryJSON(extra: #", "lab": { "subnet": "198.18.42.0/31" }"#),
        "lab.subnet: '198.18.42.0/31': a /31 prefix is not usable for a lab; expected /8 to /30"),
    BadInventory("bridge name too long", inventoryJSON(extra: #", "lab": { "bridge": "labctl-bridge-0001" }"#),
        "lab.bridge: 'labctl-bridge-0001' is not a usable interface name; expected at most 15 letters, digits, '-', '_' or '.'"),
    BadInventory("domain with an underscore", inventoryJSON(extra: #", "domain": "ways_hub.lab""#),
        #"domain: 'ways_hub.lab' is not a valid domain name; expected a host name such as "wayshub.lab""#),
    BadInventory("no hosts field", #"{ "name": "x" }"#,
        "hosts: required field is missing; expected a list of hosts"),
    BadInventory("empty host list", #"{ "hosts": [] }"#,
        "hosts: expected at least one host, got an empty list"),
    BadInventory("host without roles", inventoryJSON(hosts: #"{ "name": "proxy", "address": "10.0.0.1" }"#),
        #"hosts[0].roles: required field is missing; expected a non-empty list of role names such as ["app"]"#),
    BadInventory("role that is not a string", inventoryJSON(hosts: #"{ "name": "p", "address": "10.0.0.1", "roles": ["proxy", 7] }"#),
        "hosts[0].roles[1]: expected a role name, got 7"),
    BadInventory("become as a word", inventoryJSON(extra: #", "defaults": { "become": "yes" }"#),
        #"defaults.become: expected true or false, got "yes""#),
    BadInventory("host named all", inventoryJSON(hosts: #"{ "name": "all", "address": "10.0.0.1", "roles": ["x"] }"#),
        "hosts[0].name: 'all' is reserved (it selects every host); choose another name"),
    BadInventory("host name with capitals", inventoryJSON(hosts: #"{ "name": "App1", "address": "10.0.0.1", "roles": ["x"] }"#),
        "hosts[0].name: 'App1' is not a valid host name; expected a lowercase DNS label (a-z, 0-9, '-', at most 63 characters)"),
    BadInventory("vars that are not an object", inventoryJSON(hosts: #"{ "name": "a", "address": "10.0.0.1", "roles": ["x"], "vars": [1] }"#),
        "hosts[0].vars: expected an object of variables, got a list"),
    BadInventory("balancing method with a hyphen", inventoryJSON(extra: #", "nginx": { "method": "least-conn" }"#),
        #"nginx.method: expected one of round_robin, least_conn, ip_hash, got "least-conn"; did you mean 'least_conn'?"#),
    BadInventory("host key checking off", inventoryJSON(extra: #", "ssh": { "host_key_checking": "no" }"#),
        #"ssh.host_key_checking: expected one of strict, accept-new, got "no""#),
    BadInventory("nginx folder that is a path", inventoryJSON(extra: #", "nginx": { "dir": "../sites" }"#),
        "nginx.dir: '../sites' is not a folder name under /etc/nginx; expected a single file or folder name (letters, digits, '-', '_', '.')"),
    BadInventory("upstream with bad numbers", inventoryJSON(hosts: """
        { "name": "proxy", "address": "10.0.0.1", "roles": ["proxy"] },
        { "name": "app1", "address": "10.0.0.2", "roles": ["app"],
          "upstream": { "weight": 0, "max_fails": -1, "fail_timeout": "5 seconds" } }
        """),
        "hosts[1].upstream.weight: expected an integer of at least 1, got 0",
        "hosts[1].upstream.max_fails: expected an integer of at least 0, got -1",
        #"hosts[1].upstream.fail_timeout: '5 seconds' is not an nginx time; expected a value such as "5s" or "500ms""#),
    BadInventory("upstream options on the proxy", inventoryJSON(hosts: """
        { "name": "proxy", "address": "10.0.0.1", "roles": ["proxy"], "upstream": { "weight": 2 } }
        """),
        "hosts[0].upstream: only hosts with role 'app' are upstream servers; remove 'upstream' or add the role"),
    BadInventory("app without a proxy host", inventoryJSON(hosts: #"{ "name": "app1", "address": "10.0.0.2", "roles": ["app"] }"#, extra: appSection),
        "hosts: no host has role 'proxy'; an inventory with an 'app' section needs at least one"),
    BadInventory("app without a domain", inventoryJSON(hosts: standardHosts, extra: #", "app": { "node": { "install": "apt" } }"#),
        #"domain: required field is missing; expected a domain name such as "wayshub.lab" (needed by the 'app' section)"#),
    BadInventory("app source with git and path", inventoryJSON(hosts: standardHosts, extra: """
        , "domain": "wayshub.lab", "app": { "source": { "git": "https://example.com/a.git", "path": "app" } }
        """),
        "app.source: give either 'git' or 'path', not both"),
    BadInventory("app source with neither", inventoryJSON(hosts: standardHosts, extra: #", "domain": "w.lab", "app": { "source": { "ref": "main" } }"#),
        "app.source: expected 'git' (a repository URL) or 'path' (a folder on this machine)"),
    BadInventory("tarball without checksum and a short one", inventoryJSON(hosts: standardHosts, extra: """
        , "domain": "w.lab", "app": { "node": { "install": "tarball", "url": "https://nodejs.org/dist/v16.20.2/node-v16.20.2-linux-x64.tar.xz", "sha256": "abc123" } }
        """),
        "app.node.sha256: 'abc123' is not a SHA-256; expected 64 hex digits"),
    BadInventory("tarball without url", inventoryJSON(hosts: standardHosts, extra: """
        , "domain": "w.lab", "app": { "node": { "install": "tarball", "sha256": "\(String(repeating: "ab", count: 32))" } }
        """),
        "app.node.url: required field is missing; expected an https://, http:// or file:// URL"),
    BadInventory("node install method unknown", inventoryJSON(hosts: standardHosts, extra: #", "domain": "w.lab", "app": { "node": { "install": "brew" } }"#),
        #"app.node.install: expected one of apt, nvm, tarball, got "brew""#),
    BadInventory("node version with apt", inventoryJSON(hosts: standardHosts, extra: #", "domain": "w.lab", "app": { "node": { "install": "apt", "version": "16" } }"#),
        "app.node.version: not used with install 'apt'"),
    BadInventory("app directory not absolute", inventoryJSON(hosts: standardHosts, extra: #", "domain": "w.lab", "app": { "directory": "opt/app" }"#),
        #"app.directory: 'opt/app' is a relative path; expected an absolute path such as "/opt/wayshub" made of letters, digits and / . _ - + @ , : = (a relative path would land in the login user's home)"#),
    BadInventory("git URL with spaces", inventoryJSON(hosts: standardHosts, extra: #", "domain": "w.lab", "app": { "source": { "git": "my repo" } }"#),
        "app.source.git: 'my repo' is not a git repository; expected a git repository as https://, http://, ssh://, git://, file://, user@host:path or an absolute path"),
    BadInventory("a field given twice", "{\n  \"hosts\": [\n    { \"name\": \"a\", \"address\": \"10.0.0.1\", \"roles\": [\"x\"],\n      \"port\": 22,\n      \"port\": 2222 }\n  ]\n}",
        "hosts[0].port: given twice in one object (lines 4 and 5); keep one"),
    BadInventory("a field given twice, once escaped", #"{ "name": "a", "n\u0061me": "b", "hosts": [{ "name": "a", "address": "h", "roles": ["x"] }] }"#,
        "name: given twice in one object (line 1); keep one"),
    BadInventory("top level is a list", "[1, 2]",
        "expected a JSON object describing the lab, got a list"),
    // The parser stops at the 'o' of "nope": an 'n' could still have begun `null`.
    BadInventory("syntax error points at its line", "{\n  \"name\": \"x\",\n  \"hosts\": [ nope ]\n}",
        "invalid JSON at line 3, column 14: expected a value, found a word; strings are written in double quotes (\"...\")"),
    BadInventory("unterminated file", "{\n  \"name\": \"x\",\n  \"hosts\": [\n",
        "invalid JSON at line 4, column 1: unexpected end of file: a list ('[') is not closed with ']'"),
    BadInventory("empty file", "  \n",
        "the file is empty; expected a JSON object describing the lab (see docs/inventory.md)"),
    BadInventory("jump through a host that is not in the inventory", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"] },
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"], "jump": "bastion" }
        """),
        "hosts[1].jump: 'bastion' is not a host of the inventory (hosts: proxy, app1); give another host's name or [user@]address[:port]"),
    BadInventory("jump hosts in a circle", inventoryJSON(hosts: """
        { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"], "jump": "app1" },
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"], "jump": "proxy" }
        """),
        "hosts[0].jump: the jump hosts go round in a circle (proxy -> app1 -> proxy); a host cannot be reached through itself",
        "hosts[1].jump: the jump hosts go round in a circle (app1 -> proxy -> app1); a host cannot be reached through itself"),
    BadInventory("a jump host that is no address", inventoryJSON(hosts: """
        { "name": "app1", "address": "198.18.42.11", "roles": ["app"], "jump": "root@bad host:22" }
        """),
        #"hosts[0].jump: 'root@bad host:22' is not a jump host; expected "none", or jump hosts as OpenSSH's ProxyJump writes them: an inventory host's name or [user@]address[:port], several separated by commas"#),
    BadInventory("a jump host's port out of range", inventoryJSON(extra: #", "defaults": { "jump": "me@10.0.0.1:0" }"#),
        #"defaults.jump: 'me@10.0.0.1:0' is not a jump host; expected "none", or jump hosts as OpenSSH's ProxyJump writes them: an inventory host's name or [user@]address[:port], several separated by commas"#),
]

@Suite("Inventory problems")
struct InventoryProblemTests {
    @Test("a bad inventory is refused with exactly these messages", arguments: badInventories)
    func badInventory(_ bad: BadInventory) {
        #expect(problems(bad.json) == bad.expected)
    }

    @Test("every problem is reported at once, each with its path")
    func manyProblems() throws {
        let json = inventoryJSON(hosts: """
            { "name": "proxy", "address": "198.18.42.10", "roles": ["proxy"], "prot": 22 },
            { "name": "app1", "address": "300.1.1.1", "roles": ["app"], "port": "22" },
            { "name": "app1", "address": "198.18.42.12", "roles": [] }
            """, extra: #", "nginx": { "method": "random" }"#)
        let error = try #require(throws: InventoryError.self) { try parse(json, file: "lab/inventory.json") }
        #expect(error.reason == .invalid)
        #expect(error.file == "lab/inventory.json")
        #expect(error.problems.map(\.path) == [
            "hosts[0].prot", "hosts[1].address", "hosts[1].port", "hosts[2].roles", "nginx.method",
        ])
        let lines = error.description.split(separator: "\n").map(String.init)
        #expect(lines.first == "lab/inventory.json: 5 problems:")
        #expect(lines.dropFirst() == [
            "  - hosts[0].prot: unknown field; did you mean 'port'?",
            "  - hosts[1].address: '300.1.1.1' is not an IPv4/IPv6 address or host name",
            #"  - hosts[1].port: expected an integer from 1 to 65535, got "22""#,
            #"  - hosts[2].roles: expected a non-empty list of role names such as ["app"], got an empty list"#,
            #"  - nginx.method: expected one of round_robin, least_conn, ip_hash, got "random""#,
        ])
    }

    @Test("a single problem renders as one line that names the file")
    func oneProblemOneLine() {
        let error = #expect(throws: InventoryError.self) {
            try parse(inventoryJSON(extra: #", "domain": "-bad""#))
        }
        #expect(error?.description == "inventory.json: domain: '-bad' is not a valid domain name; expected a host name such as \"wayshub.lab\"")
    }

    @Test("a syntax error carries its position in the error's reason")
    func syntaxPosition() {
        let error = #expect(throws: InventoryError.self) { try parse("{\n\n   \"hosts\": x\n}") }
        #expect(error?.reason == .syntax(line: 3, column: 13))
    }

    @Test("positions are right in a file saved with a byte order mark and CRLF line ends")
    func byteOrderMark() throws {
        let bom = Data([0xEF, 0xBB, 0xBF])
        let bad = bom + Data("{\r\n  \"hosts\": [],\r\n  \"x\": 1 2 }".utf8)
        let error = #expect(throws: InventoryError.self) {
            try InventoryLoader.parse(data: bad, file: "inventory.json", baseDirectory: testBase)
        }
        #expect(error?.reason == .syntax(line: 3, column: 10))
        let good = bom + Data(inventoryJSON().utf8)
        #expect(try InventoryLoader.parse(data: good, file: "inventory.json", baseDirectory: testBase).hosts.count == 3)
    }

    @Test("a missing file says so and suggests --inventory")
    func missingFile() {
        let error = #expect(throws: InventoryError.self) {
            try InventoryLoader.load(path: "/nonexistent-\(UUID().uuidString)/inventory.json")
        }
        #expect(error?.reason == .fileNotFound)
        #expect(error?.description.contains("no such file") == true)
        #expect(error?.description.contains("--inventory PATH") == true)
    }
}
