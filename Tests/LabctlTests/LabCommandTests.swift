import Foundation
import TestSupport
import Testing

/// `labctl lab` through the built executable: how the inventory becomes a lab. Nothing here
/// starts a host (LabLocalTests does that), so these run without root and in parallel.
@Suite struct LabCommandTests {
    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory(prefix: "labctl-lab-cli")
    }

    func inventory(_ hosts: String, name: String = "cli-lab") throws -> String {
        let path = folder.file("inventory.json")
        let json = """
            { "name": "\(name)", "defaults": { "key": "keys/lab_ed25519" },
              "ssh": { "known_hosts": "keys/known_hosts", "connect_timeout": 2 },
              "lab": { "subnet": "198.18.79.0/24", "bridge": "labc0" },
              "hosts": [\(hosts)] }
            """
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The repository (the shipped inventories).
    var packageRootPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments, check: false)
    }

    @Test func sshPrintsTheLoginWithTheInventorysKeyUserAndKnownHosts() throws {
        let path = try inventory(#"""
            { "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] },
            { "name": "app1", "address": "198.18.79.11", "roles": ["app"], "user": "ubuntu", "become": true }
            """#)
        let result = try labctl(["lab", "ssh", "app1", "--print", "-i", path])
        #expect(result.status == 0, "\(result.stderr)")
        // Paths in the inventory are relative to its folder.
        let keys = folder.url.appendingPathComponent("keys").standardizedFileURL.path
        #expect(
            result.stdout
                == "ssh -i \(keys)/lab_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=\(keys)/known_hosts "
                + "-o StrictHostKeyChecking=yes ubuntu@198.18.79.11\n")
        // What follows `--` is the remote command.
        let withCommand = try labctl(["lab", "ssh", "proxy", "--print", "-i", path, "--", "uptime"])
        #expect(withCommand.stdout.hasSuffix(" root@198.18.79.10 uptime\n"))
    }

    @Test func statusListsEveryHostAsStoppedWhenTheLabIsNotUp() throws {
        let path = try inventory(#"{ "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] }"#, name: "cli-never-up")
        let result = try labctl(["lab", "status", "-i", path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("HOST") == true)
        #expect(lines.dropFirst().map { $0.split(separator: " ").prefix(3).joined(separator: " ") } == [
            "proxy stopped 198.18.79.10"
        ])
    }

    @Test func statusWritesJSONWithItsSchemaVersion() throws {
        let path = try inventory(#"{ "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] }"#, name: "cli-never-up")
        let result = try labctl(["lab", "status", "-i", path, "--json", "-"])
        #expect(result.status == 0, "\(result.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        #expect(document["schemaVersion"] as? Int == 1)
        let hosts = try #require(document["hosts"] as? [[String: Any]])
        #expect(hosts.map { $0["name"] as? String } == ["proxy"] && hosts.first?["state"] as? String == "stopped")
        #expect(result.stderr.hasPrefix("HOST"), "\(result.stderr)")
        // An unknown host for --log is bad input, before anything is shown.
        let unknown = try labctl(["lab", "status", "-i", path, "--log", "web9"])
        #expect(unknown.status == 4 && unknown.stderr.contains("there is no lab host named web9"), "\(unknown.stderr)")
    }

    /// An inventory of real machines (hosts outside lab.subnet) is not a lab: status does not
    /// call its hosts stopped, and up does not make containers with the VMs' addresses.
    @Test func aRealMachineInventoryIsNotALocalLab() throws {
        let vms = "\(packageRootPath)/inventory.vms.example.json"
        for verb in [["status"], ["up"], ["down"], ["ssh", "app1", "--print"]] {
            let result = try labctl(["lab"] + verb + ["-i", vms])
            #expect(result.status == 4, "\(verb): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("is not a local lab inventory: proxy (192.168.204.10), app1 (192.168.204.52), app2 (192.168.204.238) are outside its lab subnet 198.18.42.0/24"), "\(result.stderr)")
            #expect(result.stderr.contains("labctl ping/up -i"), "\(result.stderr)")
            #expect(!result.stdout.contains("stopped"))
        }
    }

    /// Every example of `labctl help lab` names a host of the shipped inventory, and the one
    /// that asks for nginx asks the host that runs it (the proxy).
    @Test func theHelpsExamplesNameTheRightHosts() throws {
        let help = try labctl(["help", "lab"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("labctl lab ssh proxy -- systemctl status nginx"))
        #expect(!help.stdout.contains("app1 -- systemctl status nginx"))
        let shipped = try String(contentsOfFile: "\(packageRootPath)/inventory.json", encoding: .utf8)
        for line in help.stdout.split(separator: "\n") where line.contains("labctl lab ssh ") || line.contains("--log ") {
            let words = line.split(separator: " ").map(String.init)
            guard let index = words.firstIndex(where: { $0 == "ssh" || $0 == "--log" }), index + 1 < words.count else { continue }
            #expect(shipped.contains("\"name\": \"\(words[index + 1])\""), "\(line)")
        }
    }

    @Test func anUnknownHostIsNamedWithTheHostsThereAre() throws {
        let path = try inventory(#"{ "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] }"#)
        let result = try labctl(["lab", "ssh", "web9", "--print", "-i", path])
        #expect(result.status == 4)
        #expect(result.stderr.contains("there is no lab host named web9; the hosts are proxy"))
    }

    /// A lab that is not running is named as such, with the command that starts it, instead of
    /// leaving the user with the connection errors of addresses nothing answers on.
    @Test func pingAndDeployOnALabThatIsNotRunningSayHowToStartIt() throws {
        let path = try inventory(#"{ "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] }"#, name: "cli-never-up")
        let hint = "the local lab 'cli-never-up' is not running (not started, or taken down with labctl lab down): start it with `sudo labctl lab up -i \(path)`"
        let ping = try labctl(["ping", "-i", path])
        #expect(ping.status == 3, "\(ping.stdout)")
        #expect(ping.stdout.contains(hint), "\(ping.stdout)")
        #expect(ping.stdout.contains("UNREACHABLE"), "\(ping.stdout)")
        // A real-VM inventory (hosts outside lab.subnet) gets no such hint.
        let vms = try inventory(#"{ "name": "proxy", "address": "127.0.0.1", "port": 1, "roles": ["proxy"] }"#, name: "vms")
        let other = try labctl(["ping", "-i", vms])
        #expect(other.status == 3 && !other.stdout.contains("local lab"), "\(other.stdout)")
    }

    @Test func inventoriesTheLabCannotHonourAreRefusedBeforeAnythingHappens() throws {
        var path = try inventory(#"""
            { "name": "proxy", "address": "198.18.79.10", "roles": ["proxy"] },
            { "name": "app1", "address": "198.18.79.11", "roles": ["app"], "key": "other_ed25519" }
            """#)
        var result = try labctl(["lab", "up", "-i", path])
        #expect(result.status == 4)
        #expect(result.stderr.contains("installs one login key on every host"))

        path = try inventory(#"{ "name": "proxy", "address": "198.18.79.10", "port": 2222, "roles": ["proxy"] }"#)
        result = try labctl(["lab", "down", "-i", path])
        #expect(result.status == 4)
        #expect(result.stderr.contains("lab hosts listen on port 22"))
    }
}
