import Foundation
import LabSpec
import Testing
@testable import LabEngine

@Suite struct TemplateTests {
    let hosts = [
        HostFacts(name: "proxy", address: "198.18.42.10", roles: ["proxy"]),
        HostFacts(name: "app1", address: "198.18.42.11", roles: ["app"], vars: ["weight": .integer(2)]),
        HostFacts(name: "app2", address: "198.18.42.12", roles: ["app"]),
    ]
    var context: TemplateContext {
        .forHost(hosts[0], allHosts: hosts, globals: [
            "domain": .string("wayshub.lab"),
            "app": .object(["port": .integer(3000), "name": .string("wayshub"), "from_git": .bool(false)]),
        ])
    }
    let origin = SourceLocation(file: "site.yml", line: 10, column: 14)

    @Test func upstreamFromTheHostsOfARole() throws {
        let template = """
            upstream {{app.name}} {
            {{#roles.app}}
                server {{address}}:{{app.port}};
            {{/roles.app}}
            }
            server {
                server_name {{domain}};
                location / { proxy_pass http://{{app.name}}; }
            }

            """
        #expect(try context.render(template, origin: origin) == """
            upstream wayshub {
                server 198.18.42.11:3000;
                server 198.18.42.12:3000;
            }
            server {
                server_name wayshub.lab;
                location / { proxy_pass http://wayshub; }
            }

            """)
    }

    @Test func noHTMLEscaping() throws {
        let context = TemplateContext(["x": .string("a < b & \"c\" 'd'")])
        #expect(try context.render("{{x}}", origin: origin) == "a < b & \"c\" 'd'")
        #expect(try context.render("\n{{x}}\n", origin: origin) == "\na < b & \"c\" 'd'\n")
        #expect(try context.render("  \n{{x}}", origin: origin) == "  \na < b & \"c\" 'd'")
    }

    @Test func hostAndVars() throws {
        let app1 = TemplateContext.forHost(hosts[1], allHosts: hosts, globals: [:])
        #expect(try app1.render("{{host.name}} {{host.address}} {{vars.weight}} {{host.vars.weight}}", origin: origin) == "app1 198.18.42.11 2 2")
    }

    @Test func anUndefinedVariableIsAnErrorWithItsPosition() {
        #expect(throws: TemplateError(issues: [
            TemplateIssue(message: "template variable 'app.prot' does not exist; did you mean 'app.port'?", location: SourceLocation(file: "site.yml", line: 10, column: 19))
        ])) {
            try context.render("port {{app.prot}}", origin: origin)
        }
    }

    @Test func positionsInAFileTemplate() {
        let file = SourceLocation(file: "templates/site.conf", line: 1, column: 1)
        let issues = context.check("a\nb {{domian}}\n{{#roles.app}}{{adress}}{{/roles.app}}\n", origin: file)
        #expect(issues.map(\.description) == [
            "templates/site.conf:2:3: template variable 'domian' does not exist; did you mean 'domain'?",
            "templates/site.conf:3:15: template variable 'adress' does not exist; did you mean 'address'?",
        ])
    }

    @Test func sectionsOverMissingNamesAndUnclosedSections() {
        let issues = context.check("{{#nothing}}x{{/nothing}}{{#app}}", origin: SourceLocation(file: "t", line: 1, column: 1))
        #expect(issues.map(\.description) == [
            "t:1:26: the section 'app' is never closed (expected '{{/app}}')",
            "t:1:1: template variable 'nothing' does not exist",
        ])
    }

    @Test func falseAndInvertedSections() throws {
        #expect(try context.render("{{#app.from_git}}git{{/app.from_git}}{{^app.from_git}}path{{/app.from_git}}", origin: origin) == "path")
    }

    @Test func partialsAreRefused() {
        #expect(context.check("{{> other}}", origin: origin).map(\.message) == [
            "partials and blocks ('{{>...}}') are not supported in labctl templates"
        ])
    }

    @Test func conditions() {
        #expect(context.evaluate(.truthy(variable: "domain")))
        #expect(!context.evaluate(.truthy(variable: "app.from_git")))
        #expect(context.evaluate(.falsy(variable: "app.from_git")))
        #expect(context.evaluate(.equals(variable: "app.port", value: "3000")))
        #expect(context.evaluate(.notEquals(variable: "domain", value: "x")))
    }
}

@Suite struct InventoryTemplateTests {
    /// The repository's own inventory.json, through the spec loader, as templates see it.
    @Test func theShippedInventoryAsJSONValues() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let inventory = try InventoryLoader.load(path: root.appendingPathComponent("inventory.json").path)
        let targets = InventoryContext.targets(inventory)
        let proxy = try #require(targets.first { $0.facts.roles.contains("proxy") })
        let template = """
            upstream {{app.name}} {
            {{#nginx.least_conn}}    least_conn;
            {{/nginx.least_conn}}{{#roles.app}}    server {{address}}:{{app.port}} weight={{upstream.weight}};
            {{/roles.app}}}
            server_name {{domain}}; # {{host.name}} {{nginx.conf_path}} {{app.node.install}} {{#app.from_path}}path{{/app.from_path}}
            """
        let apps = inventory.hosts(withRole: "app")
        var fromPath = ""
        if case .path = inventory.app!.source { fromPath = "path" }
        let leastConn = inventory.nginx.method == .leastConn ? "    least_conn;\n" : ""
        let servers = apps.map { "    server \($0.address):\(inventory.app!.port) weight=\($0.upstream.weight);\n" }.joined()
        #expect(try proxy.context.render(template, origin: SourceLocation(file: "t", line: 1, column: 1)) == """
            upstream \(inventory.app!.name) {
            \(leastConn)\(servers)}
            server_name \(inventory.domain!); # \(proxy.name) \(inventory.nginx.confPath) \(inventory.app!.node.method) \(fromPath)
            """)
        #expect(proxy.ssh.endpoint.host == proxy.facts.address)
    }
}

@Suite struct ValidationTests {
    let hosts = [
        HostFacts(name: "proxy", address: "198.18.42.10", roles: ["proxy"]),
        HostFacts(name: "app1", address: "198.18.42.11", roles: ["app"], vars: ["port": .integer(3000)]),
        HostFacts(name: "app2", address: "198.18.42.12", roles: ["app"]),
    ]

    func validate(_ yaml: String, templates: [String: String] = [:]) throws -> [String] {
        let scratch = Scratch()
        for (name, text) in templates { scratch.write("templates/" + name, text) }
        let playbook = try PlaybookParser.parse(yaml: yaml, file: "site.yml")
        let contexts = Dictionary(uniqueKeysWithValues: hosts.map {
            ($0.name, TemplateContext.forHost($0, allHosts: hosts, globals: ["domain": .string("wayshub.lab")]))
        })
        let validator = PlaybookValidator(hosts: hosts, contexts: contexts, compiler: StepCompiler(playbookDirectory: scratch.path))
        return validator.validate(playbook).map { $0.description.replacingOccurrences(of: scratch.path + "/", with: "") }
    }

    @Test func unknownTargets() throws {
        #expect(try validate("- { name: a, hosts: [apps, proxy, all], command: x }\n") == [
            "site.yml:1:22: hosts names 'apps', which is neither a role nor a host in the inventory; did you mean 'app'? (roles: app, proxy)"
        ])
    }

    @Test func aVariableMissingOnSomeHostsNamesThem() throws {
        let found = try validate("- { name: a, hosts: app, command: 'echo {{vars.port}}' }\n")
        #expect(found == [
            "site.yml:1:41: template variable 'vars.port' does not exist (for app2)"
        ])
    }

    @Test func positionsInsideABlockScalar() throws {
        let yaml = """
            - name: a
              hosts: proxy
              file:
                path: /etc/x
                content: |
                  server {
                    server_name {{domian}};
                  }
            """
        let found = try validate(yaml)
        #expect(found == [
            "site.yml:7:21: template variable 'domian' does not exist; did you mean 'domain'?"
        ])
    }

    @Test func whenVariables() throws {
        #expect(try validate("- { name: a, hosts: all, when: domian, command: x }\n") == [
            "site.yml:1:32: 'when' names the variable 'domian', which does not exist; did you mean 'domain'?"
        ])
    }

    @Test func stepsSkippedByWhenAreNotCheckedForThatHost() throws {
        let yaml = "- { name: a, hosts: app, when: \"host.name == 'app1'\", command: 'echo {{vars.port}}' }\n"
        #expect(try validate(yaml) == [])
    }

    @Test func templateFiles() throws {
        let yaml = """
            - name: conf
              hosts: proxy
              file: { path: /etc/x, template: site.conf }
            - name: other
              hosts: proxy
              file: { path: /etc/y, template: nope.conf }
            """
        #expect(try validate(yaml, templates: ["site.conf": "server_name {{domain}};\nlisten {{nginx.port}};\n"]) == [
            "templates/site.conf:2:8: template variable 'nginx.port' does not exist",
            "site.yml:6:35: the template nope.conf does not exist (looked for templates/nope.conf)",
        ])
    }

    @Test func handlersAreCheckedForTheHostsThatNotifyThem() throws {
        let yaml = """
            steps:
              - { name: a, hosts: proxy, command: x, notify: h }
            handlers:
              - { name: h, command: 'echo {{vars.port}}' }
            """
        #expect(try validate(yaml) == ["site.yml:4:31: template variable 'vars.port' does not exist"])
    }

    @Test func uploadSourceMustExist() throws {
        let issues = try validate("- { name: a, hosts: app, upload: { src: missing-dir, dest: /opt/app } }\n")
        #expect(issues.count == 1)
        #expect(issues.first?.hasPrefix("site.yml:1:41: the upload source ") == true)
        #expect(issues.first?.hasSuffix("missing-dir is not a directory here") == true)
    }
}
