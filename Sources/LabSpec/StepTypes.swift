import Foundation

/// Every step type a playbook can name, with its arguments: what the parser accepts and lists
/// in its errors and "did you mean" hints, what `labctl run --help` names, and the argument
/// tables of docs/playbooks.md (a test compares them). A new step type starts here.
public struct StepTypeSpec: Sendable, Hashable {
    public struct Argument: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            /// A string, rendered as a template for each host.
            case template
            /// One or more strings (a string or a list), each a template.
            case templates
            /// A list of plain strings.
            case names
            case integer
            case boolean
            case choice([String])
            /// An octal mode such as "0644".
            case mode
            /// A regular expression (a template too: checked again once rendered).
            case regex
            /// Names to template strings.
            case mapping
        }

        public var name: String
        public var kind: Kind
        /// When it must be given: nil for never, else "yes" or the condition ("unless `template`").
        public var required: String?
        /// What it is when not given, as the docs show it; nil: nothing.
        public var byDefault: String?
        public var meaning: String

        init(_ name: String, _ kind: Kind, required: String? = nil, byDefault: String? = nil, _ meaning: String) {
            self.name = name
            self.kind = kind
            self.required = required
            self.byDefault = byDefault
            self.meaning = meaning
        }

        /// Whether the value is rendered per host (its variables are checked before the run).
        public var isTemplate: Bool {
            switch kind {
            case .template, .templates, .regex, .mapping: return true
            default: return false
            }
        }

        var kindText: String {
            switch kind {
            case .template: return "text"
            case .templates: return "text or list"
            case .names: return "list of names"
            case .integer: return "number"
            case .boolean: return "true/false"
            case .choice(let values): return values.map { "`\($0)`" }.joined(separator: ", ")
            case .mode: return "octal mode"
            case .regex: return "regular expression"
            case .mapping: return "mapping"
            }
        }
    }

    public var name: String
    /// One sentence: what the step makes true on the host.
    public var summary: String
    public var arguments: [Argument]
    /// What a step may give instead of a mapping (`package: nginx`), in words; nil: none.
    public var shorthand: String?

    public var argumentNames: [String] { arguments.map(\.name) }

    public static func named(_ name: String) -> StepTypeSpec? { all.first { $0.name == name } }

    static let presence = Argument.Kind.choice(["present", "absent"])

    public static let all: [StepTypeSpec] = [
        StepTypeSpec(
            name: "package", summary: "Debian packages installed (or removed) with apt.",
            arguments: [
                Argument("name", .templates, required: "yes", "the package or packages"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes them"),
                Argument("cache_valid_time", .integer, "seconds: refresh the apt index when it is older"),
            ],
            shorthand: "`package: nginx` or `package: [nginx, curl]` is short for `package: {name: ...}`"),
        StepTypeSpec(
            name: "file", summary: "A file's content, owner and mode, written atomically.",
            arguments: [
                Argument("path", .template, required: "yes", "the file on the host"),
                Argument("content", .template, required: "unless `template`", "the content, inline"),
                Argument("template", .template, required: "unless `content`", "a file under `playbooks/templates/` to render"),
                Argument("owner", .template, "user that owns it"),
                Argument("group", .template, "its group"),
                Argument("mode", .mode, byDefault: "kept; 0644 for a new file", "its mode"),
                Argument("validate", .template, "a command run on the staged file (`%s`) before it replaces the old one"),
                Argument("backup", .boolean, byDefault: "true", "keep the old content under /var/backups/labctl"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes the file"),
            ]),
        StepTypeSpec(
            name: "directory", summary: "A directory with the given owner and mode.",
            arguments: [
                Argument("path", .template, required: "yes", "the directory on the host"),
                Argument("owner", .template, "user that owns it"),
                Argument("group", .template, "its group"),
                Argument("mode", .mode, "its mode"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes it with its contents"),
            ]),
        StepTypeSpec(
            name: "link", summary: "A symbolic link to the given target.",
            arguments: [
                Argument("path", .template, required: "yes", "the link on the host"),
                Argument("target", .template, required: "with `state: present`", "what it points to: absolute, or relative to the link's folder"),
                Argument("force", .boolean, byDefault: "false", "replace a file at `path`, and link to a target that does not exist yet"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes the link (never what it points to)"),
            ]),
        StepTypeSpec(
            name: "attributes", summary: "The owner, group and mode of a path that exists.",
            arguments: [
                Argument("path", .template, required: "yes", "a file or directory (a link is followed)"),
                Argument("owner", .template, required: "unless `group` or `mode`", "user that owns it"),
                Argument("group", .template, "its group"),
                Argument("mode", .mode, "its mode"),
            ]),
        StepTypeSpec(
            name: "block", summary: "Lines between two marker lines in an existing file.",
            arguments: [
                Argument("path", .template, required: "yes", "the file (it must exist)"),
                Argument("block", .template, required: "with `state: present`", "the lines"),
                Argument("marker", .template, byDefault: "`# {mark} LABCTL MANAGED BLOCK`", "the marker lines; `{mark}` becomes BEGIN and END"),
                Argument("insert_after", .regex, "a new block goes after the last matching line"),
                Argument("insert_before", .regex, "a new block goes before the last matching line"),
                Argument("validate", .template, "a command run on the staged file (`%s`)"),
                Argument("backup", .boolean, byDefault: "true", "keep the old content under /var/backups/labctl"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes the block"),
            ]),
        StepTypeSpec(
            name: "line", summary: "One line in a file: added, replaced or removed.",
            arguments: [
                Argument("path", .template, required: "yes", "the file"),
                Argument("line", .template, required: "with `state: present`", "the line"),
                Argument("regexp", .regex, "the last matching line is replaced; with `state: absent` every matching line is removed"),
                Argument("insert_after", .regex, "a new line goes after the last matching line (else at the end)"),
                Argument("validate", .template, "a command run on the staged file (`%s`)"),
                Argument("backup", .boolean, byDefault: "true", "keep the old content under /var/backups/labctl"),
                Argument("create", .boolean, byDefault: "false", "make the file when it is missing"),
                Argument("state", presence, byDefault: "`present`", "`absent` removes the line"),
            ]),
        StepTypeSpec(
            name: "service", summary: "A systemd unit running or not, enabled or not.",
            arguments: [
                Argument("name", .template, required: "yes", "the unit"),
                Argument("enabled", .boolean, "started at boot"),
                Argument("state", .choice(["started", "stopped", "restarted", "reloaded"]), required: "unless `enabled` or `daemon_reload`", "`restarted` and `reloaded` always act"),
                Argument("daemon_reload", .boolean, byDefault: "false", "`systemctl daemon-reload` when systemd says a unit file changed"),
            ]),
        StepTypeSpec(
            name: "command", summary: "A shell command, guarded so that it runs only when needed.",
            arguments: [
                Argument("run", .template, required: "yes", "the command (shell text; values in it are quoted)"),
                Argument("creates", .template, "skip when this path exists"),
                Argument("unless", .template, "skip when this command succeeds (it runs while looking at the host)"),
                Argument("chdir", .template, "the directory it runs in"),
                Argument("timeout", .integer, "seconds it may take"),
                Argument("user", .template, "run as this user with their login environment (`su -l`; needs root)"),
                Argument("env", .mapping, "environment variables for it"),
            ],
            shorthand: "`command: \"echo hi\"` is short for `command: {run: \"echo hi\"}`"),
        StepTypeSpec(
            name: "git", summary: "A clone of a repository checked out at a ref.",
            arguments: [
                Argument("repo", .template, required: "yes", "the repository's URL"),
                Argument("dest", .template, required: "yes", "the clone on the host"),
                Argument("ref", .template, byDefault: "`HEAD`", "a branch, tag or full commit id"),
            ]),
        StepTypeSpec(
            name: "upload", summary: "A local directory copied to the host when files differ.",
            arguments: [
                Argument("src", .template, required: "yes", "a directory, relative to the playbook's folder"),
                Argument("dest", .template, required: "yes", "the directory on the host"),
                Argument("owner", .template, "user that owns the copy"),
                Argument("group", .template, "its group"),
                Argument("keep", .names, "names directly inside `dest` that the host makes itself (`node_modules`)"),
            ]),
        StepTypeSpec(
            name: "wait_for", summary: "Waits until a port or a URL answers; never a change.",
            arguments: [
                Argument("port", .integer, required: "unless `url`", "a TCP port"),
                Argument("host", .template, byDefault: "127.0.0.1", "where the port is"),
                Argument("url", .template, required: "unless `port`", "an HTTP URL that must answer below 400"),
                Argument("unit", .template, "a systemd unit whose processes must hold the port"),
                Argument("timeout", .integer, byDefault: "60", "seconds to wait"),
            ]),
        StepTypeSpec(
            name: "flush_handlers", summary: "Runs the handlers notified so far, here.",
            arguments: [],
            shorthand: "written `flush_handlers: true`"),
    ]

    /// `labctl run --help`'s list: each type and its summary, aligned.
    public static var helpList: String {
        let width = all.map(\.name.count).max() ?? 0
        return all.map { "  " + $0.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.summary }
            .joined(separator: "\n")
    }

    /// The reference table of docs/playbooks.md for this step type.
    public var docsTable: String {
        guard !arguments.isEmpty else { return "No arguments." }
        var lines = ["| argument | value | required | default | meaning |", "|---|---|---|---|---|"]
        for argument in arguments {
            lines.append("| `\(argument.name)` | \(argument.kindText) | \(argument.required ?? "") | \(argument.byDefault ?? "") | \(argument.meaning) |")
        }
        return lines.joined(separator: "\n")
    }

    /// The step type's part of docs/playbooks.md that comes from here: heading, summary, table.
    public var docsSection: String {
        var text = "### `\(name)`\n\n\(summary)"
        if let shorthand { text += " \(shorthand.prefix(1).uppercased() + shorthand.dropFirst())." }
        return text + "\n\n" + docsTable
    }
}
