import Foundation
import LabEngine
import TestSupport
import Testing

/// The lab of week3-task.md end to end, through the built labctl, on a local lab of the test's
/// own (its own subnet, bridge and keys): real sshd, systemd, nginx and node on nspawn hosts.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct WeekThreeLabTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory(prefix: "labctl-week3")
    }

    /// One inventory per stage of the lab; `appServers` says which hosts have the role `app`.
    func writeInventory(_ name: String, appServers: [String], nginx: String = #"{ "dir": "dumbways" }"#, backupOnApp2: Bool = false)
        throws -> String
    {
        func roles(_ host: String) -> String { appServers.contains(host) ? #"["app"]"# : #"["spare"]"# }
        let app2Upstream = backupOnApp2 && appServers.contains("app2") ? #", "upstream": { "backup": true }"# : ""
        let json = """
            {
              "name": "week3-e2e",
              "domain": "wayshub.test",
              "defaults": { "key": "id_ed25519" },
              "ssh": { "known_hosts": "known_hosts" },
              "lab": { "subnet": "198.18.88.0/24", "bridge": "labe2e0" },
              "hosts": [
                { "name": "proxy", "address": "198.18.88.10", "roles": ["proxy"] },
                { "name": "app1", "address": "198.18.88.11", "roles": \(roles("app1")), "user": "ubuntu", "become": true },
                { "name": "app2", "address": "198.18.88.12", "roles": \(roles("app2"))\(app2Upstream) }
              ],
              "app": { "source": { "path": "\(Self.repository.path)/app/wayshub-standin" }, "node": { "install": "apt" } },
              "nginx": \(nginx)
            }
            """
        let path = folder.file("\(name).json")
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func labctl(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments + ["--playbooks", Self.repository.appendingPathComponent("playbooks").path], check: false)
    }

    func labctlPlain(_ arguments: [String]) throws -> LocalResult {
        try runLocal([labctlExecutablePath] + arguments, check: false)
    }

    func report(_ path: String) throws -> RunReport {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Who answered `count` requests for the domain through the proxy.
    func servedBy(count: Int) throws -> [String] {
        try (0..<count).map { _ in
            let result = try runLocal([
                "curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "5", "-H", "Host: wayshub.test", "http://198.18.88.10/",
            ])
            #expect(result.stdout.hasPrefix("HTTP/1.1 200"), "\(result.stdout)")
            return result.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-served-by:") }
                .map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
        }
    }

    /// The proxy's lab config as it is on the host (the lines `labctl exec` prints for it).
    func proxyConfig(_ inventory: String) throws -> String {
        let output = try labctlPlain(["exec", "-i", inventory, "proxy", "--", "cat /etc/nginx/dumbways/my.reverse-proxy.conf"]).stdout
        return output.split(separator: "\n").filter { $0.hasPrefix("proxy | ") }.map { $0.dropFirst(8) }.joined(separator: "\n")
    }

    @Test func fromFreshHostsToALoadBalancedLabThatSurvivesBadInput() async throws {
        let one = try writeInventory("one-app", appServers: ["app1"])
        let two = try writeInventory("two-apps", appServers: ["app1", "app2"])
        defer {
            _ = try? labctlPlain(["lab", "down", "-i", one])
            folder.remove()
        }
        let up = try labctlPlain(["lab", "up", "-i", one])
        try #require(up.status == 0, "lab up failed: \(up.stdout)\(up.stderr)")

        // --check on fresh hosts reports changes and makes none.
        let check = try labctl(["provision", "-i", one, "--check", "--json", folder.file("check.json")])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(try report(folder.file("check.json")).changedCount > 0)
        let nginxAfterCheck = try labctlPlain(["exec", "-i", one, "proxy", "--", "command -v nginx || echo none"])
        #expect(nginxAfterCheck.stdout.contains("proxy | none"))

        // One app server: a plain reverse proxy, as in part 1 of the course.
        for playbook in ["provision", "deploy"] {
            let run = try labctl([playbook, "-i", one])
            try #require(run.status == 0, "\(playbook) failed: \(run.stdout)\(run.stderr)")
        }
        let single = try proxyConfig(one)
        #expect(single.contains("proxy_pass http://198.18.88.11:3000;"))
        #expect(!single.contains("upstream wayshub_servers"))
        #expect(Set(try servedBy(count: 4)) == ["app1"])

        // Two app servers: an upstream, nginx reloaded once.
        let provisionTwo = try labctl(["provision", "-i", two])
        try #require(provisionTwo.status == 0, "\(provisionTwo.stdout)\(provisionTwo.stderr)")
        let deployTwo = try labctl(["deploy", "-i", two, "--json", folder.file("deploy-two.json")])
        try #require(deployTwo.status == 0, "\(deployTwo.stdout)\(deployTwo.stderr)")
        let balanced = try proxyConfig(two)
        #expect(balanced.contains("upstream wayshub_servers {"))
        #expect(balanced.contains("server 198.18.88.12:3000"))
        let proxyReport = try #require(try report(folder.file("deploy-two.json")).hosts.first { $0.host == "proxy" })
        let reloads = proxyReport.steps.filter { $0.handler && $0.name == "reload nginx" && $0.status == .changed }
        #expect(reloads.count == 1)
        #expect(Set(try servedBy(count: 12)) == ["app1", "app2"])

        // A second run changes nothing.
        for playbook in ["provision", "deploy"] {
            let again = try labctl([playbook, "-i", two, "--json", folder.file("\(playbook)-again.json")])
            #expect(again.status == 0)
            #expect(try report(folder.file("\(playbook)-again.json")).changedCount == 0, "\(again.stdout)")
        }

        // An inventory value nginx refuses (ip_hash with a backup server): nginx -t fails, its own
        // error is shown, the old config stays live and nginx keeps serving.
        let broken = try writeInventory(
            "broken", appServers: ["app1", "app2"], nginx: #"{ "dir": "dumbways", "method": "ip_hash" }"#, backupOnApp2: true)
        let refused = try labctl(["deploy", "-i", broken])
        #expect(refused.status == 2)
        #expect(refused.stdout.contains("[emerg]"), "\(refused.stdout)")
        #expect(refused.stdout.contains("/etc/nginx/dumbways/my.reverse-proxy.conf"))
        #expect(try proxyConfig(two) == balanced)
        #expect(Set(try servedBy(count: 6)) == ["app1", "app2"])
    }
}
