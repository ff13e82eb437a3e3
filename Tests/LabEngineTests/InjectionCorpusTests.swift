import Foundation
import LabSpec
import SSH
import TestSupport
import Testing
@testable import LabEngine

/// Hostile values in every place a playbook value reaches a host, run over real SSH (a private
/// sshd on loopback). Each value carries a payload that would create
/// a marker file if any part of it ran as shell syntax. For every place the value is either
/// refused before anything runs, with a message naming the argument, or it reaches the host
/// byte for byte; no marker ever appears.
@Suite(.serialized) struct InjectionCorpusTests {
    /// `@M@` stands for the value's own marker path.
    static let payloads: [String] = [
        ";touch @M@", "; touch @M@ #", "$(touch @M@)", "`touch @M@`", "' ; touch @M@ ; '", "\" ; touch @M@ ; \"",
        "'$(touch @M@)'", "\"$(touch @M@)\"", "\ntouch @M@", "\r\ntouch @M@\n", "x\ntouch @M@\n", "| touch @M@",
        "& touch @M@", "&& touch @M@", "|| touch @M@", ">@M@", ">>@M@", "<@M@; touch @M@", "$(touch${IFS}@M@)",
        "${IFS}$(touch @M@)", "\\$(touch @M@)", "\\'; touch @M@; '", "-c touch @M@", "--help", "-rf",
        "--upload-pack=touch @M@;false", "-oProxyCommand=touch @M@", "ext::sh -c touch% @M@", "*", "?", "[!a]*",
        "~root", "$HOME", "${PATH}", "!!", "{{vars.root}}", "{{{vars.v}}}", "%s;touch @M@", "\t;touch @M@",
        " leading space", "ü∂ß;touch @M@", "x\u{0}touch @M@", String(repeating: "a", count: 100_000) + ";touch @M@",
        "$((1+1))", "#;touch @M@", "a b  c", "'", "\"", "\\", "x\\", "x'\\''y", "$(echo touch @M@ | sh)",
        "/etc/passwd;touch @M@", "../../etc;touch @M@", "http://127.0.0.1/;touch @M@", "https://x.invalid/'$(touch @M@)'",
        "file:///etc/passwd';touch @M@;'", "git@host:repo;touch @M@", "user@h:`touch @M@`", "a\u{2028}b;touch @M@",
        "\u{7F};touch @M@", "$'\\x74ouch' @M@",
    ]

    /// One place a value reaches: steps (YAML, with `{{vars.v}}` for the value and
    /// `{{vars.root}}` for the place's own folder), and what "byte for byte" means there.
    struct Place: Sendable {
        var name: String
        var steps: String
        /// Run in check mode (package and service steps must not change this machine).
        var check = false
        /// Given the value and the place's folder after a successful run: what should hold.
        var written: (@Sendable (_ value: String, _ root: String) -> Bool)?
    }

    static func read(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }

    static let places: [Place] = [
        Place(name: "file-content", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/content", content: "{{vars.v}}" }
            """, written: { v, root in read(root + "/content") == Array(v.utf8) }),
        Place(name: "file-path", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/p-{{vars.v}}", content: "x" }
            """, written: { v, root in read(root + "/p-" + v) == Array("x".utf8) }),
        Place(name: "file-owner", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/o", content: "x", owner: "{{vars.v}}" }
            """),
        Place(name: "file-validate", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/val", content: "x", validate: "test -n {{vars.v}} && test -f %s" }
            """, written: { _, root in read(root + "/val") == Array("x".utf8) }),
        Place(name: "shell-template", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/t.sh", template: inj.sh }
            - hosts: h
              command: { run: "sh {{vars.root}}/t.sh > {{vars.root}}/t.out" }
            """, written: { v, root in read(root + "/t.out") == Array(v.utf8) }),
        Place(name: "directory", steps: """
            - hosts: h
              directory: { path: "{{vars.root}}/d-{{vars.v}}" }
            """, written: { v, root in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: root + "/d-" + v, isDirectory: &isDirectory) && isDirectory.boolValue
            }),
        Place(name: "link-target", steps: """
            - hosts: h
              link: { path: "{{vars.root}}/lt", target: "{{vars.v}}", force: true }
            """, written: { v, root in (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/lt")) == v }),
        Place(name: "link-path", steps: """
            - hosts: h
              link: { path: "{{vars.root}}/lp-{{vars.v}}", target: "/nonexistent", force: true }
            """, written: { v, root in (try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/lp-" + v)) == "/nonexistent" }),
        Place(name: "attributes-owner", steps: """
            - hosts: h
              file: { path: "{{vars.root}}/attr", content: "x" }
            - hosts: h
              attributes: { path: "{{vars.root}}/attr", owner: "{{vars.v}}" }
            """),
        Place(name: "line", steps: """
            - hosts: h
              line: { path: "{{vars.root}}/line", line: "{{vars.v}}", create: true }
            """, written: { v, root in read(root + "/line") == Array((v + "\n").utf8) }),
        Place(name: "block", steps: """
            - hosts: h
              command: { run: "touch {{vars.root}}/block", creates: "{{vars.root}}/block" }
            - hosts: h
              block: { path: "{{vars.root}}/block", block: "{{vars.v}}" }
            """, written: { v, root in
                guard let bytes = read(root + "/block") else { return false }
                return String(decoding: bytes, as: UTF8.self).contains(v)
            }),
        Place(name: "block-marker", steps: """
            - hosts: h
              command: { run: "touch {{vars.root}}/marker", creates: "{{vars.root}}/marker" }
            - hosts: h
              block: { path: "{{vars.root}}/marker", block: "x", marker: "# {mark} {{vars.v}}" }
            """, written: { v, root in
                guard let bytes = read(root + "/marker") else { return false }
                return String(decoding: bytes, as: UTF8.self).contains("# BEGIN " + v + "\n")
            }),
        // A rolling group's `serving` question, asked in the look before the host's turn.
        Place(name: "rotation-serving", steps: """
            - hosts: h
              serial: 1
              rotation:
                via: rotation-serving
                serving: "printf '%s' {{vars.v}} > {{vars.root}}/serving.out"
                take_out: "true"
                put_back: "true"
              steps:
                - name: inside the group
                  command: { run: "true", creates: "/" }
            """, written: { v, root in read(root + "/serving.out") == Array(v.utf8) }),
        Place(name: "command-run", steps: """
            - hosts: h
              command: { run: "printf '%s' {{vars.v}} > {{vars.root}}/run.out" }
            """, written: { v, root in read(root + "/run.out") == Array(v.utf8) }),
        Place(name: "command-run-in-single-quotes", steps: """
            - hosts: h
              command: { run: "printf '%s' 'x{{vars.v}}y' > {{vars.root}}/run.out" }
            """, written: { v, root in read(root + "/run.out") == Array(("x" + v + "y").utf8) }),
        Place(name: "command-run-in-double-quotes", steps: """
            - hosts: h
              command: { run: "printf '%s' \\"x{{vars.v}}y\\" > {{vars.root}}/run.out" }
            """, written: { v, root in read(root + "/run.out") == Array(("x" + v + "y").utf8) }),
        Place(name: "command-run-in-substitution", steps: """
            - hosts: h
              command: { run: "test \\"$(printf '%s.' {{vars.v}})\\" = \\"$(printf '%s.' '{{vars.v}}')\\" && touch {{vars.root}}/same" }
            """, written: { _, root in FileManager.default.fileExists(atPath: root + "/same") }),
        Place(name: "command-run-in-comment", steps: """
            - hosts: h
              command: { run: "true # {{vars.v}}" }
            """),
        Place(name: "command-env", steps: """
            - hosts: h
              command: { run: 'printf "%s" "$V" > {{vars.root}}/env.out', env: { V: "{{vars.v}}" } }
            """, written: { v, root in read(root + "/env.out") == Array(v.utf8) }),
        Place(name: "command-unless", steps: """
            - hosts: h
              command: { run: "touch {{vars.root}}/unless.ran", unless: "test x = {{vars.v}}" }
            """, written: { _, root in FileManager.default.fileExists(atPath: root + "/unless.ran") }),
        Place(name: "command-creates", steps: """
            - hosts: h
              command: { run: "touch {{vars.root}}/creates.ran", creates: "{{vars.root}}/c-{{vars.v}}" }
            """, written: { _, root in FileManager.default.fileExists(atPath: root + "/creates.ran") }),
        Place(name: "command-chdir", steps: """
            - hosts: h
              command: { run: "pwd > /dev/null", chdir: "{{vars.root}}/{{vars.v}}" }
            """),
        Place(name: "command-user", steps: """
            - hosts: h
              command: { run: "id -un > {{vars.root}}/user.out", user: "{{vars.v}}" }
            """),
        Place(name: "git-repo", steps: """
            - hosts: h
              git: { repo: "{{vars.v}}", dest: "{{vars.root}}/g", ref: main }
            """),
        Place(name: "git-ref", steps: """
            - hosts: h
              git: { repo: "{{vars.origin}}", dest: "{{vars.root}}/g", ref: "{{vars.v}}" }
            """),
        Place(name: "git-dest", steps: """
            - hosts: h
              git: { repo: "{{vars.origin}}", dest: "{{vars.root}}/g-{{vars.v}}", ref: main }
            """, written: { v, root in FileManager.default.fileExists(atPath: root + "/g-" + v + "/.git") }),
        Place(name: "upload-dest", steps: """
            - hosts: h
              upload: { src: "{{vars.src}}", dest: "{{vars.root}}/u-{{vars.v}}" }
            """, written: { v, root in read(root + "/u-" + v + "/server.js") != nil }),
        Place(name: "upload-owner", steps: """
            - hosts: h
              upload: { src: "{{vars.src}}", dest: "{{vars.root}}/uo", owner: "{{vars.v}}" }
            """),
        Place(name: "wait-host", steps: """
            - hosts: h
              wait_for: { host: "{{vars.v}}", port: 1, timeout: 1 }
            """),
        Place(name: "wait-url", steps: """
            - hosts: h
              wait_for: { url: "{{vars.v}}", timeout: 1 }
            """),
        Place(name: "wait-url-path", steps: """
            - hosts: h
              wait_for: { url: "http://127.0.0.1:1/{{vars.v}}", timeout: 1 }
            """),
        Place(name: "service", steps: """
            - hosts: h
              service: { name: "{{vars.v}}", state: started }
            """, check: true),
        Place(name: "package", steps: """
            - hosts: h
              package: { name: ["{{vars.v}}"] }
            """, check: true),
    ]

    let scratch = Scratch()

    /// One connection per place for the whole corpus: runs then cost their commands, not a
    /// login each (the corpus makes some thousand runs).
    struct KeptSession: HostSession {
        let client: SSHClient
        func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult {
            try await client.run(command, onLine: onLine)
        }
        func close() async {}
    }

    func prepareSources() async throws {
        scratch.write("book/templates/inj.sh", "#!/bin/sh\n# printf's argument is quoted by labctl\nprintf '%s' {{vars.v}}\n")
        scratch.write("src/server.js", "// the app\n")
        let origin = Shell.quote(scratch.file("origin"))
        let setup = await shell("git init -q -b main \(origin) && git -C \(origin) -c user.email=t@t -c user.name=t commit -q --allow-empty -m one")
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    /// One playbook per place with its steps aimed at that place's host.
    func playbook(_ place: Place) throws -> Playbook {
        var number = 0
        let steps = place.steps.split(separator: "\n").map { line -> String in
            guard line.hasPrefix("- hosts: h") else { return "  " + line }
            number += 1
            return "  - name: \(place.name) \(number)\n    hosts: \(place.name)"
        }.joined(separator: "\n")
        return try PlaybookParser.parse(yaml: "steps:\n" + steps + "\n", file: scratch.file("book/site.yml"))
    }

    @Test func noHostileValueRunsAndEachIsRefusedOrWrittenAsGiven() async throws {
        // The login user has /bin/sh as its shell: root's bash here reads an rc file for every
        // command, which would make the corpus' thousand runs slow for nothing. Everything the
        // values may touch belongs to this user, markers' folder included, so a payload that
        // ran would succeed in making its marker.
        let user = "labinj" + String(UUID().uuidString.prefix(6)).lowercased()
        // "*": no password, yet not locked ("!"), which sshd would refuse.
        try runLocal(["useradd", "-M", "-p", "*", "-d", scratch.path, "-s", "/bin/sh", user])
        defer { _ = try? runLocal(["userdel", user], check: false) }
        let server = try TestSSHServer()
        defer { server.stop() }
        try await prepareSources()
        let markers = scratch.file("markers")
        try FileManager.default.createDirectory(atPath: markers, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.file("runs"), withIntermediateDirectories: true)
        try runLocal(["chown", "-R", user, scratch.path])
        let books = try Self.places.map(playbook)
        var sessions: [String: SSHClient] = [:]
        for place in Self.places { sessions[place.name] = try await SSHClient.connect(server.options(user: user)) }
        defer { for client in sessions.values { Task { await client.close() } } }
        let kept = sessions
        var refused = 0
        var written = 0

        for (index, payload) in Self.payloads.enumerated() {
            let marker = markers + "/m\(index)"
            let value = payload.replacingOccurrences(of: "@M@", with: marker)
            let runFolder = scratch.file("runs/\(index)")
            try runLocal(["install", "-d", "-o", user, runFolder])
            var accepted: [(Place, Playbook, RunTarget)] = []
            for (place, book) in zip(Self.places, books) {
                let root = runFolder + "/" + place.name
                try runLocal(["install", "-d", "-o", user, root])
                let facts = HostFacts(name: place.name, address: "127.0.0.1", roles: [], vars: [
                    "v": .string(value), "root": .string(root), "origin": .string(scratch.file("origin")),
                    "src": .string(scratch.file("src")),
                ])
                let target = RunTarget(
                    facts: facts, ssh: server.options(user: user), become: nil, context: .forHost(facts, allHosts: [facts], globals: [:]),
                    stateDirectory: root + ".state")
                let runner = PlaybookRunner(targets: [target], options: RunOptions(
                    playbookDirectory: scratch.file("book"), backupDirectory: scratch.file("backups")))
                let issues = runner.validate(book)
                if issues.isEmpty {
                    accepted.append((place, book, target))
                    continue
                }
                refused += 1
                for issue in issues {
                    #expect(issue.location.file.hasSuffix("site.yml"), "\(place.name): \(issue)")
                    #expect(!issue.message.isEmpty && !issue.message.contains("Error Domain"), "\(place.name): \(issue.message)")
                    #expect(issue.message.utf8.count < 2_000, "\(place.name): a message of \(issue.message.utf8.count) bytes")
                }
            }
            // The accepted places run on the host at once (one connection each), in real mode
            // except where a real run would change this machine.
            let bookFolder = scratch.file("book")
            let backups = scratch.file("backups")
            await withTaskGroup(of: (Place, RunReport).self) { group in
                for (place, book, target) in accepted {
                    group.addTask {
                        var options = RunOptions(playbookDirectory: bookFolder, backupDirectory: backups)
                        options.check = place.check
                        let connector: HostConnector = { target throws(SSHError) in KeptSession(client: kept[target.name]!) }
                        return (place, await PlaybookRunner(targets: [target], options: options, connector: connector).run(book))
                    }
                }
                for await (place, report) in group {
                    let host = report.hosts[0]
                    let root = runFolder + "/" + place.name
                    if host.status == .ok, let check = place.written {
                        written += 1
                        let asGiven = check(value, root)
                        #expect(asGiven, "payload \(index) (\(ValueForm.shown(payload))) in \(place.name) was not written as given")
                    } else if host.status != .ok {
                        #expect(!(host.error ?? "").isEmpty, "payload \(index) in \(place.name): a failure without a message")
                    }
                }
            }
            #expect(!FileManager.default.fileExists(atPath: marker), "payload \(index) (\(ValueForm.shown(payload))) ran on the host")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: markers).isEmpty)
        // Both outcomes happen: the corpus is not refused wholesale, nor accepted wholesale.
        #expect(refused > 100 && written > 100, "refused \(refused), written \(written)")
    }
}
