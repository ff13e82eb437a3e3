import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// Playbooks run over real SSH (a private sshd on loopback, logging in as root), each "host"
/// working under its own temporary directory on this machine. Package and service steps need
/// real systemd hosts: they are covered on the local lab, not here.
@Suite struct EndToEndSSHTests {
    let scratch = Scratch()

    func runner(
        _ server: TestSSHServer, hosts: [String], user: String = "root", become: Become? = nil,
        options: (inout RunOptions) -> Void = { _ in }
    ) -> PlaybookRunner {
        let facts = hosts.map {
            HostFacts(name: $0, address: "127.0.0.1", roles: ["app"], vars: ["root": .string(scratch.file($0))])
        }
        for host in hosts { try? FileManager.default.createDirectory(atPath: scratch.file(host), withIntermediateDirectories: true) }
        let targets = facts.map {
            RunTarget(
                facts: $0, ssh: server.options(user: user), become: become,
                context: .forHost($0, allHosts: facts, globals: [
                    "domain": .string("wayshub.lab"), "app": .object(["port": .integer(3000), "name": .string("wayshub")]),
                    "origin": .string(scratch.file("origin")), "src": .string(scratch.file("src")),
                ]),
                // Each "host" keeps its own pending handlers: they are one machine here.
                stateDirectory: scratch.file("state/" + $0.name))
        }
        var runOptions = RunOptions(playbookDirectory: scratch.path, backupDirectory: scratch.file("backups"))
        options(&runOptions)
        return PlaybookRunner(targets: targets, options: runOptions)
    }

    func playbook(_ yaml: String) throws -> Playbook {
        try PlaybookParser.parse(yaml: yaml, file: scratch.file("site.yml"))
    }

    /// Every step type that works without systemd, with a handler.
    static let site = """
        steps:
          - name: config dir
            hosts: app
            directory: { path: "{{vars.root}}/nginx/dumbways", mode: "0755" }
          - name: nginx.conf
            hosts: app
            command:
              run: "printf 'events {}\\\\nhttp {\\\\n    sendfile on;\\\\n}\\\\n' > {{vars.root}}/nginx/nginx.conf"
              creates: "{{vars.root}}/nginx/nginx.conf"
          - name: reverse proxy
            hosts: app
            file:
              path: "{{vars.root}}/nginx/dumbways/my.reverse-proxy.conf"
              template: proxy.conf.mustache
              validate: grep -q proxy_pass %s
            notify: reload nginx
          - name: include the lab's configs
            hosts: app
            block:
              path: "{{vars.root}}/nginx/nginx.conf"
              block: "    include {{vars.root}}/nginx/dumbways/*;"
              insert_after: '^\\s*http\\s*\\{'
            notify: reload nginx
          - name: hosts entry
            hosts: app
            line: { path: "{{vars.root}}/hosts", line: "127.0.0.1 {{domain}}", regexp: '\\s{{domain}}$', create: true }
          - name: app source
            hosts: app
            git: { repo: "{{origin}}", dest: "{{vars.root}}/app-git", ref: main }
          - name: app upload
            hosts: app
            upload: { src: "{{src}}", dest: "{{vars.root}}/app" }
          - name: sshd answers
            hosts: app
            wait_for: { port: 22, timeout: 5 }
        handlers:
          - name: reload nginx
            command: "echo reload >> {{vars.root}}/reloads"
        """

    func prepareSources() async throws {
        scratch.write("templates/proxy.conf.mustache", """
            upstream {{app.name}} {
            {{#roles.app}}
                server {{address}}:{{app.port}};
            {{/roles.app}}
            }
            server {
                listen 80;
                server_name {{domain}};
                location / { proxy_pass http://{{app.name}}; }
            }

            """)
        scratch.write("src/package.json", "{\"name\":\"wayshub\",\"scripts\":{\"start\":\"node server.js\"}}\n")
        scratch.write("src/server.js", "require('http').createServer((q, r) => r.end('WaysHub')).listen(3000)\n")
        let origin = Shell.quote(scratch.file("origin"))
        let setup = await shell("git init -q -b main \(origin) && git -C \(origin) -c user.email=t@t -c user.name=t commit -q --allow-empty -m one")
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    @Test func firstRunChangesSecondRunChangesNothingInOneRoundTrip() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        try await prepareSources()
        // The wait_for step probes the test sshd's own port on the host.
        let book = try playbook(Self.site.replacingOccurrences(of: "port: 22,", with: "port: \(server.port),"))
        let runner = runner(server, hosts: ["app1", "app2"])
        #expect(runner.validate(book).isEmpty)

        let first = await runner.run(book)
        #expect(first.exitCode == .ok, "\(first.hosts.map { "\($0.host): \($0.error ?? "")" })")
        for host in first.hosts {
            #expect(host.steps.map(\.status) == [.changed, .changed, .changed, .changed, .changed, .changed, .changed, .ok, .changed])
            #expect(host.steps.last?.handler == true)
        }
        let conf = try #require(scratch.read("app1/nginx/dumbways/my.reverse-proxy.conf"))
        #expect(conf.contains("    server 127.0.0.1:3000;\n    server 127.0.0.1:3000;\n"))
        #expect(scratch.read("app1/nginx/nginx.conf") == """
            events {}
            http {
            # BEGIN LABCTL MANAGED BLOCK
                include \(scratch.file("app1"))/nginx/dumbways/*;
            # END LABCTL MANAGED BLOCK
                sendfile on;
            }

            """)
        #expect(scratch.read("app2/hosts") == "127.0.0.1 wayshub.lab\n")
        #expect(scratch.read("app2/app/server.js")?.contains("WaysHub") == true)
        #expect(scratch.read("app1/reloads") == "reload\n", "two notifying steps changed: the handler ran once")

        let second = await runner.run(book)
        #expect(second.exitCode == .ok)
        #expect(second.changedCount == 0)
        #expect(second.hosts.allSatisfy { $0.roundTrips == 1 })
        #expect(second.hosts.allSatisfy { $0.steps.count == 8 && $0.steps.allSatisfy { $0.status == .ok } })
        #expect(scratch.read("app1/reloads") == "reload\n", "no change, no handler")

        // Something moved on the "host": only the step concerned changes, and its handler runs.
        _ = await shell("echo '# edited by hand' >> " + Shell.quote(scratch.file("app2/nginx/dumbways/my.reverse-proxy.conf")))
        let third = await runner.run(book)
        #expect(third.hosts[0].count(.changed) == 0)
        #expect(third.hosts[1].steps.filter { $0.status == .changed }.map(\.name) == ["reverse proxy", "reload nginx"])
        #expect(scratch.read("app2/reloads") == "reload\nreload\n")
    }

    @Test func checkModeOnAFreshHostChangesNothing() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        try await prepareSources()
        let book = try playbook(Self.site.replacingOccurrences(of: "port: 22,", with: "port: \(server.port),"))
        let report = await runner(server, hosts: ["app1"], options: { $0.check = true; $0.diff = true }).run(book)
        #expect(report.exitCode == .ok)
        #expect(report.hosts[0].count(.changed) >= 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("app1")).isEmpty)
    }

    @Test func aFailingValidateLeavesTheOldFileInPlace() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        scratch.write("app1/site.conf", "old and good\n")
        let yaml = """
            - name: config
              hosts: app
              file: { path: "{{vars.root}}/site.conf", content: "new and broken\\n", validate: "grep -q good %s" }
            - name: after
              hosts: app
              command: "touch {{vars.root}}/after"
            """
        let report = await runner(server, hosts: ["app1"]).run(try playbook(yaml))
        #expect(report.exitCode == .hostFailed)
        #expect(report.hosts[0].steps.map(\.status) == [.failed])
        #expect(report.hosts[0].error == "config: validation failed:")
        #expect(scratch.read("app1/site.conf") == "old and good\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("app1")) == ["site.conf"], "no temporary file left, later steps not run")
    }

    @Test func diffModeOverSSH() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        scratch.write("app1/f.conf", "listen 80;\nserver_name old;\n")
        let yaml = "- { name: f, hosts: app, file: { path: \"{{vars.root}}/f.conf\", content: \"listen 80;\\nserver_name {{domain}};\\n\" } }\n"
        let report = await runner(server, hosts: ["app1"], options: { $0.diff = true }).run(try playbook(yaml))
        let path = scratch.file("app1/f.conf")
        #expect(report.hosts[0].steps[0].diff == "--- \(path)\n+++ \(path)\n@@ -1,2 +1,2 @@\n listen 80;\n-server_name old;\n+server_name wayshub.lab;\n")
        #expect(scratch.read("app1/f.conf") == "listen 80;\nserver_name wayshub.lab;\n")
    }

    @Test func anUnreachableHostIsReportedAndTheOthersRun() async throws {
        let server = try TestSSHServer()
        defer { server.stop() }
        var runner = runner(server, hosts: ["app1", "app2"])
        var targets = runner.targets
        targets[1].ssh.endpoint.port = try TestSSHServer.freePort()
        runner = PlaybookRunner(targets: targets, options: runner.options)
        let report = await runner.run(try playbook("- { name: a, hosts: app, command: 'true' }\n"))
        #expect(report.hosts.map(\.status) == [.ok, .unreachable])
        #expect(report.exitCode == .unreachable)
        #expect(report.hosts[1].error == "connection refused; is sshd running and listening on that port?")
    }

    /// A login that is not root, with passwordless sudo (like Multipass's `ubuntu`): steps with
    /// `become: true` write where only root may.
    @Test func becomeThroughSudo() async throws {
        let user = "lbe" + String(UUID().uuidString.prefix(6)).lowercased()
        let sudoers = "/etc/sudoers.d/labctl-engine-\(user)"
        defer {
            try? FileManager.default.removeItem(atPath: sudoers)
            _ = try? runLocal(["userdel", "-r", user], check: false)
        }
        try runLocal(["useradd", "-m", "-s", "/bin/bash", user])
        // A user without a password is locked, and sshd (without PAM) refuses locked accounts.
        try runLocal(["chpasswd"], stdin: "\(user):pw-\(user)\n")
        try "\(user) ALL=(ALL) NOPASSWD:ALL\n".write(toFile: sudoers, atomically: true, encoding: .utf8)
        try runLocal(["chmod", "0440", sudoers])
        let server = try TestSSHServer()
        defer { server.stop() }
        // Root's own directory for this "host": the login user cannot write it without sudo.
        _ = await shell("chmod 0755 " + Shell.quote(scratch.path))
        try FileManager.default.createDirectory(atPath: scratch.file("app1"), withIntermediateDirectories: true)
        _ = await shell("chmod 0700 " + Shell.quote(scratch.file("app1")))
        let yaml = """
            - name: as root
              hosts: app
              become: true
              file: { path: "{{vars.root}}/root-only.conf", content: "secret\\n", mode: "0600" }
            - name: as the user
              hosts: app
              command: "id -un"
            """
        let book = try playbook(yaml)
        let runner = runner(server, hosts: ["app1"], user: user, become: .sudo)
        let report = await runner.run(book)
        try #require(report.exitCode == .ok, "\(report.hosts.map { $0.error ?? "" })")
        #expect(report.hosts[0].steps.last?.output == user)
        #expect(scratch.read("app1/root-only.conf") == "secret\n")
        #expect(await shell("stat -c %U:%a " + Shell.quote(scratch.file("app1/root-only.conf"))).stdout == "root:600\n")
        let again = await runner.run(book)
        #expect(again.hosts[0].steps.first?.status == .ok)
    }
}
