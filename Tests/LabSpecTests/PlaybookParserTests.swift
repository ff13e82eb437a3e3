import Testing
@testable import LabSpec

@Suite struct PlaybookParserTests {
    func issues(_ yaml: String) -> [String] {
        do {
            _ = try PlaybookParser.parse(yaml: yaml, file: "site.yml")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func aGoodPlaybookParses() throws {
        let yaml = """
            become: true
            steps:
              - name: Install nginx
                hosts: proxy
                package: nginx
                tags: [nginx]
              - name: Site config
                hosts: [proxy]
                file:
                  path: /etc/nginx/dumbways/site.conf
                  template: site.conf.mustache
                  mode: "0644"
                  validate: nginx -t -c %s
                notify: reload nginx
              - name: Include it
                hosts: proxy
                become: false
                when: nginx.enabled
                block:
                  path: /etc/nginx/nginx.conf
                  insert_after: '^\\s*http\\s*\\{'
                  block: "include /etc/nginx/dumbways/*;"
            handlers:
              - name: reload nginx
                service: { name: nginx, state: reloaded }
            """
        let playbook = try PlaybookParser.parse(yaml: yaml, file: "site.yml")
        #expect(playbook.steps.count == 3)
        #expect(playbook.handlers.map(\.name) == ["reload nginx"])
        #expect(playbook.steps[0].action == .package(PackageArguments(
            names: [Located("nginx", at: SourceLocation(file: "site.yml", line: 5, column: 14))], state: .present, cacheValidTime: nil)))
        #expect(playbook.steps[0].become == true)
        #expect(playbook.steps[2].become == false)
        #expect(playbook.steps[0].tags == ["nginx"])
        #expect(playbook.steps[1].notify.map(\.value) == ["reload nginx"])
        #expect(playbook.steps[2].when?.value == .truthy(variable: "nginx.enabled"))
        #expect(playbook.handlers[0].become == true)
        guard case .file(let file) = playbook.steps[1].action else { Issue.record("not a file step"); return }
        #expect(file.mode?.value == "0644")
        #expect(file.template?.value == "site.conf.mustache")
        #expect(file.backup == true)
        guard case .block(let block) = playbook.steps[2].action else { Issue.record("not a block step"); return }
        #expect(block.insertAfter?.value == #"^\s*http\s*\{"#)
        #expect(block.marker.value == "# {mark} LABCTL MANAGED BLOCK")
    }

    @Test func aBareListIsAPlaybookToo() throws {
        let playbook = try PlaybookParser.parse(yaml: "- name: hi\n  hosts: all\n  command: echo hi\n", file: "p.yml")
        #expect(playbook.steps.count == 1)
        guard case .command(let command) = playbook.steps[0].action else { Issue.record("not a command"); return }
        #expect(command.run.value == "echo hi")
    }

    @Test func conditions() throws {
        let yaml = """
            - { name: a, hosts: all, when: 'app.source.kind == "git"', command: "true" }
            - { name: b, hosts: all, when: "not app.from_git", command: "true" }
            - { name: c, hosts: all, when: "app.name != 'x'", command: "true" }
            """
        let steps = try PlaybookParser.parse(yaml: yaml, file: "p.yml").steps
        #expect(steps.map(\.when?.value) == [
            .equals(variable: "app.source.kind", value: "git"), .falsy(variable: "app.from_git"),
            .notEquals(variable: "app.name", value: "x"),
        ])
    }

    /// Each bad input with the exact messages it must produce (all of them, in order).
    static let badInputs: [(String, [String])] = [
        (
            "- name: x\n  hosts: all\n  pakage: nginx\n",
            ["site.yml:3:3: unknown step type 'pakage'; did you mean 'package'? (step types: attributes, block, command, directory, file, flush_handlers, git, line, link, package, service, upload, wait_for)"]
        ),
        (
            "- name: x\n  hosts: all\n  file:\n    pth: /a\n    content: b\n",
            [
                "site.yml:3:3: step 'x': file needs the argument 'path'",
                "site.yml:4:5: unknown argument 'pth' for file; did you mean 'path'? (arguments: path, content, template, owner, group, mode, validate, backup, state)",
            ]
        ),
        (
            "- name: x\n  hosts: all\n  service:\n    name: nginx\n    state: reload\n",
            ["site.yml:5:12: 'state' of service must be one of started, stopped, restarted, reloaded; got 'reload'; did you mean 'reloaded'?"]
        ),
        (
            "- name: x\n  hosts: all\n  file:\n    path: /a\n    content: b\n    mode: [1]\n",
            ["site.yml:6:11: 'mode' of file must be an octal mode such as \"0644\"; got a list"]
        ),
        (
            "- name: x\n  hosts: all\n  wait_for:\n    port: eighty\n",
            ["site.yml:4:11: 'port' of wait_for must be a whole number (no quotes, no unit); got 'eighty'"]
        ),
        (
            "- name: x\n  hosts: all\n  file: { path: /a, content: b, backup: maybe }\n",
            ["site.yml:3:41: 'backup' of file must be true or false; got 'maybe'"]
        ),
        (
            "just some text\n",
            ["site.yml:1:1: a playbook must be a list of steps, or a mapping with 'steps:' and 'handlers:'; got 'just some text'"]
        ),
        (
            "steps:\n  - name: x\n    hosts: all\n    command: echo\n    notify: restart ap\nhandlers:\n  - name: restart app\n    service: { name: app, state: restarted }\n",
            ["site.yml:5:13: notify names 'restart ap', which is not a handler; did you mean 'restart app'? (handlers: restart app)"]
        ),
        (
            "steps:\n  - name: x\n    hosts: all\n    command: echo\n    notify: nothing\n",
            ["site.yml:5:13: notify names 'nothing', which is not a handler (the playbook has no handlers)"]
        ),
        (
            "- name: x\n  hosts: all\n  file: { path: /a, content: b }\n  line: { path: /a, line: b }\n",
            ["site.yml:4:3: step 'x' has 2 step types, 'file' and 'line'; a step has exactly one"]
        ),
        (
            "- hosts: all\n  command: echo\n",
            ["site.yml:1:3: a step has no 'name'; every step needs one"]
        ),
        (
            "- name: x\n  command: echo\n",
            ["site.yml:1:3: step 'x' has no 'hosts'; name roles, hosts or \"all\""]
        ),
        (
            "- name: x\n  hosts: all\n",
            ["site.yml:1:3: step 'x' has no step type; expected one of: attributes, block, command, directory, file, flush_handlers, git, line, link, package, service, upload, wait_for"]
        ),
        (
            "- name: x\n  hosts: all\n  file: { path: /a }\n",
            ["site.yml:3:3: step 'x': file needs the argument 'content' (inline) or 'template' (a file in templates/)"]
        ),
        (
            "- name: x\n  hosts: all\n  block: { path: /a, block: b, insert_after: '(' }\n",
            ["site.yml:3:47: 'insert_after' of block is not a valid regular expression: ("]
        ),
        (
            "- name: x\n  hosts: all\n  when: app.port > 3\n  command: echo\n",
            ["site.yml:3:9: 'when' must be a variable (app.enabled), its negation (not app.enabled) or a comparison (app.source == \"git\"); got 'app.port > 3'"]
        ),
        (
            "- name: x\n  hosts: all\n  command:\n    run: echo\n   bad: indent\n",
            ["site.yml:5:4: YAML syntax error: did not find expected key (while parsing a block mapping that started at 1:3)"]
        ),
        (
            "steps:\n  - name: x\n    hosts: all\n    command: [echo]\n",
            ["site.yml:4:14: the arguments of command must be a mapping (e.g. command:\\n  run: ...); got a list"]
        ),
        (
            "stepz: []\n",
            [
                "site.yml:1:1: unknown key 'stepz' at the top of the playbook; did you mean 'steps'?; expected 'steps', 'handlers' or 'become'",
                "site.yml:1:1: the playbook has no 'steps:' list",
            ]
        ),
        (
            "handlers:\n  - name: h\n    hosts: all\n    command: echo\nsteps: []\n",
            ["site.yml:3:12: a handler takes no 'hosts'; it runs on the hosts that notified it"]
        ),
    ]

    @Test func flushHandlers() throws {
        let playbook = try PlaybookParser.parse(yaml: "- { name: now, hosts: all, flush_handlers: true }\n", file: "p.yml")
        #expect(playbook.steps[0].action == .flushHandlers)
        #expect(issues("- { name: now, hosts: all, flush_handlers: false }\n") == ["site.yml:1:44: 'flush_handlers' takes only true"])
    }

    @Test func handlersCannotNotify() {
        #expect(issues("steps: []\nhandlers:\n  - { name: h, command: x, notify: other }\n") == [
            "site.yml:3:36: a handler cannot notify other handlers; list them in the step's notify instead (handlers run in the order they are written)"
        ])
    }

    @Test(arguments: badInputs.indices)
    func badInput(_ index: Int) {
        let (yaml, expected) = Self.badInputs[index]
        #expect(issues(yaml) == expected)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let yaml = """
            - name: one
              hosts: all
              pakage: nginx
            - name: two
              hosts: all
              file: { path: /a, content: b, mode: "999" }
            - name: three
              hosts: all
              service: { name: x }
            """
        #expect(issues(yaml) == [
            "site.yml:3:3: unknown step type 'pakage'; did you mean 'package'? (step types: attributes, block, command, directory, file, flush_handlers, git, line, link, package, service, upload, wait_for)",
            "site.yml:6:39: 'mode' of file must be an octal mode such as \"0644\"; got '999'",
            "site.yml:9:3: step 'three': service needs 'state' (started, stopped, restarted, reloaded) or 'enabled'",
        ])
    }

    @Test func emptyFile() {
        #expect(issues("") == ["site.yml:1:1: the playbook is empty; expected a list of steps, or a mapping with 'steps:' and 'handlers:'"])
    }

    @Test func suggestions() {
        #expect(Suggestion.closest(to: "pakage", in: ["package", "file"]) == "package")
        #expect(Suggestion.closest(to: "srevice", in: ["service"]) == "service")
        #expect(Suggestion.closest(to: "zzz", in: ["package", "file"]) == nil)
    }
}

/// Rolling groups: a step with `steps:`, flattened into its steps, each carrying the group.
@Suite struct RollingGroupParsingTests {
    func issues(_ yaml: String) -> [String] { PlaybookParserTests().issues(yaml) }

    @Test func aGroupsStepsCarryItsHostsBecomeTagsAndSettings() throws {
        let book = try PlaybookParser.parse(yaml: """
            steps:
              - name: first
                hosts: proxy
                command: "true"
              - name: the app, in turns
                hosts: app
                serial: 2
                max_fail: 1
                become: true
                tags: [app]
                rotation:
                  via: proxy
                  serving: "systemctl is-active -q app"
                  take_out: "out {{address}}"
                  put_back: "in {{address}}"
                steps:
                  - name: update
                    command: "true"
                  - name: check
                    become: false
                    command: "true"
            """, file: "site.yml")
        #expect(book.steps.map(\.name) == ["first", "update", "check"])
        #expect(book.steps[0].rollout == nil)
        let rollout = try #require(book.steps[1].rollout)
        #expect(book.steps[2].rollout == rollout)
        #expect(rollout.serial == 2 && rollout.maxFail == 1 && rollout.name == "the app, in turns")
        #expect(rollout.rotation?.via.map(\.value) == ["proxy"])
        #expect(rollout.rotation?.takeOut.value == "out {{address}}")
        #expect(book.steps[1].hosts.map(\.value) == ["app"])
        #expect(book.steps[1].become == true && book.steps[2].become == false)
        #expect(book.steps[1].tags == ["app"])
    }

    @Test func whatAGroupRefuses() {
        let nested = issues("""
            - name: g
              hosts: app
              serial: 1
              steps:
                - name: inner
                  steps: [ { name: x, command: "true" } ]
                - name: own hosts
                  hosts: proxy
                  command: "true"
            """)
        #expect(nested.contains { $0.contains("a group cannot hold another group") })
        #expect(nested.contains { $0.contains("runs on the group's hosts; remove its 'hosts'") })
        let settings = issues("""
            - name: g
              hosts: app
              serial: 0
              max_fail: -1
              parallel: 2
              rotation: { via: proxy, take_out: "x" }
              steps: [ { name: x, command: "true" } ]
            """)
        #expect(settings.contains { $0.contains("'serial' of group 'g' must be between 1 and 1000") })
        #expect(settings.contains { $0.contains("'max_fail' must be a whole number") })
        #expect(settings.contains { $0.contains("unknown key 'parallel' in a rolling group") })
        #expect(settings.contains { $0.contains("needs both 'take_out' and 'put_back'") })
    }
}

@Suite struct PlaybookMessageTests {
    /// What a playbook says is quoted in messages with its control characters made visible:
    /// no escape sequence from a file reaches the terminal.
    @Test func controlCharactersInQuotedValuesAreShownAsEscapes() {
        let issues = PlaybookParserTests().issues("- name: x\n  hosts: all\n  \"comm\\u001b[31mand\": \"true\"\n  \"bad\\nline\": 1\n")
        #expect(!issues.isEmpty)
        #expect(issues.allSatisfy { !$0.unicodeScalars.contains { $0.value < 0x20 } }, "\(issues)")
        #expect(issues.contains { $0.contains("comm\\x1B[31mand") }, "\(issues)")
        #expect(issues.contains { $0.contains("bad\\nline") }, "\(issues)")
    }
}
