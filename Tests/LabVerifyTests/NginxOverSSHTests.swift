import Foundation
import LabSpec
@testable import LabVerify
import SSH
import Testing
import TestSupport

/// Check 2 and the systemd service control through the production SSH runner, against a private
/// sshd on loopback that logs in to this machine, whose nginx config is Debian's default.
@Suite(.enabled(if: FileManager.default.fileExists(atPath: "/etc/nginx/sites-enabled/default") && LoopbackLab.nginxPath != nil,
                "needs Debian's nginx package (its default site)"))
struct NginxOverSSHTests {
    func inventory(_ server: TestSSHServer, port: Int? = nil, nginx: Inventory.NginxSettings) -> Inventory {
        Inventory(
            name: "ssh-loopback", domain: "wayshub.test",
            hosts: [InventoryHost(name: "proxy", address: "127.0.0.1", port: port ?? server.port, keyPath: server.clientKeyPath, roles: ["proxy"])],
            ssh: .init(knownHostsPath: server.knownHostsPath, hostKeyChecking: .strict, connectTimeout: .seconds(5)),
            nginx: nginx, baseDirectory: server.directory.url)
    }

    @Test("nginx -T through SSH: the test passes and an included directory is recognised; systemctl's answer is reported as it is")
    func includedDirectory() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        // Debian's nginx.conf includes /etc/nginx/sites-enabled/*, and the default site is there.
        let lab = inventory(server, nginx: .init(directory: "sites-enabled", confName: "default"))
        let report = await Verifier(inventory: lab, options: VerifyOptions(checks: [.nginx])).run()

        #expect(report.checks.count == 3)
        let test = try #require(report.checks.first { $0.name == "nginx -t passes on proxy" })
        #expect(test.status == .pass, "\(test.summary) \(test.evidence.details)")
        #expect(test.evidence.details.contains { $0.contains("test is successful") })
        let include = try #require(report.checks.first { $0.name == "nginx loads sites-enabled/default on proxy" })
        #expect(include.status == .pass, "\(include.summary)")
        #expect(include.summary.contains("include /etc/nginx/sites-enabled/*;"), "\(include.summary)")

        let local = try runLocal(["systemctl", "is-active", "nginx"], check: false)
        let active = try #require(report.checks.first { $0.name == "nginx is active on proxy" })
        #expect(active.status == (local.succeeded ? .pass : .fail), "\(active.summary)")
    }

    @Test("a lab directory nginx.conf does not include fails and names the missing include line")
    func missingInclude() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let lab = inventory(server, nginx: .init(directory: "labctl-absent-dir"))
        let report = await Verifier(inventory: lab, options: VerifyOptions(checks: [.nginx])).run()
        let include = try #require(report.checks.last)
        #expect(include.status == .fail)
        #expect(include.summary == "nginx does not load /etc/nginx/labctl-absent-dir/my.reverse-proxy.conf: nginx.conf's http block has no 'include /etc/nginx/labctl-absent-dir/*;'")
        #expect(report.exitCode == 1)
    }

    @Test("an unreachable proxy fails all three nginx checks with the SSH error")
    func unreachable() async throws {
        let server = try TestSSHServer()
        let closedPort = try TestSSHServer.freePort()
        defer { server.stop() }
        let report = await Verifier(inventory: inventory(server, port: closedPort, nginx: .init()), options: VerifyOptions(checks: [.nginx])).run()
        #expect(report.checks.count == 3)
        #expect(report.checks.allSatisfy { $0.status == .fail && $0.summary.contains("connection refused") }, "\(report.checks.map(\.summary))")
    }

    @Test("systemd service control over SSH: a unit that cannot be stopped is an error naming host, unit and systemctl's words")
    func serviceControlError() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        let lab = inventory(server, nginx: .init())
        let runner = SSHHostCommandRunner(inventory: lab)
        let services = SystemdServiceController(runner: runner, unit: "labctl-no-such-unit", timeout: .seconds(20))
        await #expect {
            try await services.stop(lab.hosts[0])
        } throws: { error in
            guard let error = error as? ServiceControlError else { return false }
            return error.host == "proxy" && error.unit == "labctl-no-such-unit" && error.action == "stop" && !error.detail.isEmpty
                && error.description.hasPrefix("proxy: could not stop labctl-no-such-unit: ")
        }
        // The same connection serves the next command.
        let output = try await runner.run("echo one; echo two >&2; exit 3", on: lab.hosts[0], privileged: false, timeout: .seconds(10))
        #expect(output.status == 3)
        #expect(output.stdout == "one\n")
        #expect(output.stderr == "two\n")
        await runner.close()
    }
}
