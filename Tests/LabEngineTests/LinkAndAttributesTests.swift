import Foundation
import LabSpec
import SSH
import Testing
@testable import LabEngine

/// The `link` and `attributes` step types: planning as data, then a real shell on real files.
struct LinkAndAttributesPlanningTests {
    let link = LinkOperation(path: "/etc/nginx/sites-enabled/lab", target: "../sites-available/lab")

    @Test("a link already pointing at the target is left alone; one pointing elsewhere is replaced by a rename")
    func linkPlans() throws {
        let same = Facts(["kind": "link", "link.b64": Data("../sites-available/lab\n".utf8).base64EncodedString(), "parent": "dir", "target": "exists"])
        #expect(try link.plan(same).isEmpty)
        let other = Facts(["kind": "link", "link.b64": Data("/tmp/old\n".utf8).base64EncodedString(), "parent": "dir", "target": "exists"])
        let plan = try link.plan(other)
        #expect(plan.commands.contains("ln -s -- ../sites-available/lab /etc/nginx/sites-enabled/lab.labctl-link"))
        #expect(plan.commands.last == "mv -fT -- /etc/nginx/sites-enabled/lab.labctl-link /etc/nginx/sites-enabled/lab")
        #expect(plan.summary == ["link /etc/nginx/sites-enabled/lab -> ../sites-available/lab (was -> /tmp/old)"])
        let missing = Facts(["kind": "none", "parent": "dir", "target": "exists"])
        #expect(try link.plan(missing).summary == ["link /etc/nginx/sites-enabled/lab -> ../sites-available/lab"])
    }

    @Test("a file is replaced only with force, a directory never, a missing target only with force")
    func linkRefusals() throws {
        let file = Facts(["kind": "file", "parent": "dir", "target": "exists"])
        #expect(throws: StepFailure.self) { try link.plan(file) }
        var forced = link
        forced.force = true
        #expect(try forced.plan(file).summary.first?.hasPrefix("replace the file") == true)
        #expect(throws: StepFailure.self) { try forced.plan(Facts(["kind": "dir", "parent": "dir", "target": "exists"])) }
        let noTarget = Facts(["kind": "none", "parent": "dir", "target": "missing"])
        #expect(throws: StepFailure.self) { try link.plan(noTarget) }
        #expect(try forced.plan(noTarget).isEmpty == false)
        #expect(throws: StepFailure.self) { try link.plan(Facts(["kind": "none", "parent": "none", "target": "missing"])) }
    }

    @Test("state absent removes a link and nothing else")
    func linkAbsent() throws {
        let gone = LinkOperation(path: "/srv/x", target: nil, state: .absent)
        #expect(try gone.plan(Facts(["kind": "none"])).isEmpty)
        #expect(try gone.plan(Facts(["kind": "link"])).commands == ["rm -f -- /srv/x"])
        #expect(throws: StepFailure.self) { try gone.plan(Facts(["kind": "file"])) }
        #expect(throws: StepFailure.self) { try gone.plan(Facts(["kind": "dir"])) }
    }

    @Test("attributes changes only what differs, and refuses a path that is not there")
    func attributesPlans() throws {
        let step = AttributesOperation(path: "/var/log/app", owner: "www-data", mode: 0o750)
        #expect(try step.plan(Facts(["kind": "dir", "stat": "www-data:root:750"])).isEmpty)
        let plan = try step.plan(Facts(["kind": "file", "stat": "root:root:644"]))
        #expect(plan.commands == ["chown -- www-data /var/log/app", "chmod -- 0750 /var/log/app"])
        #expect(throws: StepFailure.self) { try step.plan(Facts(["kind": "none"])) }
        #expect(throws: StepFailure.self) { try step.plan(Facts(["kind": "dangling"])) }
    }

    @Test("the parser builds both, and refuses attributes with nothing to set")
    func parsing() throws {
        let playbook = try PlaybookParser.parse(yaml: """
            steps:
              - { name: l, hosts: all, link: { path: /a, target: b, force: true } }
              - { name: a, hosts: all, attributes: { path: /a, mode: "0600" } }
            """, file: "t.yml")
        guard case .link(let link) = playbook.steps[0].action, case .attributes(let attributes) = playbook.steps[1].action else {
            Issue.record("\(playbook.steps.map(\.action))")
            return
        }
        #expect(link.force && link.target?.value == "b")
        #expect(attributes.mode?.value == "0600")
        #expect(throws: PlaybookError.self) {
            try PlaybookParser.parse(yaml: "steps:\n  - { name: a, hosts: all, attributes: { path: /a } }\n", file: "t.yml")
        }
    }
}

@Suite struct LinkAndAttributesRealShellTests {
    @Test("a link is made, kept on the second run, moved to a new target, and removed; a file is replaced only with force")
    func linkConverges() async throws {
        let scratch = Scratch()
        scratch.write("available/site", "x\n")
        scratch.write("available/other", "y\n")
        try FileManager.default.createDirectory(atPath: scratch.file("enabled"), withIntermediateDirectories: true)
        let path = scratch.file("enabled/site")
        let first = LinkOperation(path: path, target: "../available/site")
        #expect(try await converge(first).isEmpty == false)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path) == "../available/site")
        #expect(try await converge(first).isEmpty, "second run changes nothing")
        let moved = LinkOperation(path: path, target: "../available/other")
        #expect(try await converge(moved).isEmpty == false)
        #expect(scratch.read("enabled/site") == "y\n")
        #expect(try await converge(moved).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("enabled")) == ["site"])

        scratch.write("enabled/plain", "z\n")
        let overFile = LinkOperation(path: scratch.file("enabled/plain"), target: "../available/site")
        await #expect(throws: StepFailure.self) { try await converge(overFile) }
        #expect(scratch.read("enabled/plain") == "z\n")
        var forced = overFile
        forced.force = true
        #expect(try await converge(forced).isEmpty == false)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.file("enabled/plain")) == "../available/site")

        let missingTarget = LinkOperation(path: scratch.file("enabled/later"), target: "../available/later")
        await #expect(throws: StepFailure.self) { try await converge(missingTarget) }
        let gone = LinkOperation(path: path, target: nil, state: .absent)
        #expect(try await converge(gone).isEmpty == false)
        #expect(try await converge(gone).isEmpty)
        #expect(scratch.read("available/other") == "y\n", "removing the link leaves what it pointed to")
    }

    @Test("attributes sets the mode of an existing file and leaves its content; a missing file is an error")
    func attributesConverge() async throws {
        let scratch = Scratch()
        scratch.write("app.log", "kept\n")
        let step = AttributesOperation(path: scratch.file("app.log"), mode: 0o600)
        #expect(try await converge(step).isEmpty == false)
        #expect(await shell("stat -c %a " + Shell.quote(scratch.file("app.log"))).stdout == "600\n")
        #expect(scratch.read("app.log") == "kept\n")
        #expect(try await converge(step).isEmpty)
        await #expect(throws: StepFailure.self) { try await converge(AttributesOperation(path: scratch.file("nope"), mode: 0o600)) }
        #expect(!FileManager.default.fileExists(atPath: scratch.file("nope")))
    }
}
