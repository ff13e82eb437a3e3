import Foundation

/// A step type as pyinfra models operations: a probe that prints the facts the step needs,
/// and a pure `plan` from those facts to the commands that close the difference. An empty plan
/// means the host is already as wanted. Planning never touches a host, so it is tested as
/// data: facts in, commands out.
public protocol StepOperation: Sendable {
    /// POSIX sh printing `key=value` lines (see `Facts`). Runs inside a subshell of the
    /// combined probe script, after `ProbeScript.prelude`.
    var probe: String { get }
    /// A path whose facts the step needs; the probe script gathers those of all steps at once.
    /// They join the step's facts as if its own probe had printed them.
    var pathProbe: PathProbe? { get }
    func plan(_ facts: Facts) throws(StepFailure) -> StepPlan
    /// How long applying the plan may take on the host before it is stopped; nil: no limit of
    /// the step's own (a step with a timeout of its own gets that and a minute's grace).
    var applyTimeout: Duration? { get }
}

extension StepOperation {
    public var pathProbe: PathProbe? { nil }
    public var applyTimeout: Duration? { nil }

    /// A step's own timeout in seconds as the limit for applying it: the step's time and a
    /// minute for sudo, su and the shell around it, at most a year.
    static func applyLimit(seconds: Int) -> Duration { .seconds(min(seconds, 31_536_000) + 60) }
}

/// `flush_handlers`: the runner acts on the step itself (the handlers notified so far run
/// there); as an operation it has nothing to find on a host and nothing to do.
public struct FlushHandlersOperation: StepOperation {
    public init() {}
    public var probe: String { "" }
    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan { .unchanged }
}

/// Settings that change what plans contain.
public struct PlanOptions: Sendable, Hashable {
    /// Fetch old contents and produce unified diffs of changed files.
    public var diff: Bool
    /// Where replaced files are kept (the full path of the file is recreated below it), never
    /// beside the file: nginx includes `dir/*`, so a backup next to a config would be loaded too.
    public var backupDirectory: String

    public init(diff: Bool = false, backupDirectory: String = "/var/backups/labctl") {
        self.diff = diff
        self.backupDirectory = backupDirectory
    }
}

/// What a step will do on one host.
public struct StepPlan: Sendable, Hashable {
    /// Shell lines, run in order by one `sh -c` with `set -e`.
    public var commands: [String]
    /// Bytes the commands read on stdin (file contents, a tar stream): never in argv.
    public var stdin: [UInt8]
    /// False for steps whose commands only wait or look (wait_for): they are reported ok.
    public var changes: Bool
    /// A unified diff of a file's old and new content, in diff mode.
    public var diff: String?
    /// What will change, in words, for check mode and -v.
    public var summary: [String]
    /// The command's output is the point of the step (command steps): keep it in the report.
    public var capturesOutput: Bool

    public init(
        commands: [String], stdin: [UInt8] = [], changes: Bool = true, diff: String? = nil, summary: [String] = [],
        capturesOutput: Bool = false
    ) {
        self.commands = commands
        self.stdin = stdin
        self.changes = changes
        self.diff = diff
        self.summary = summary
        self.capturesOutput = capturesOutput
    }

    public static let unchanged = StepPlan(commands: [], changes: false)

    public var isEmpty: Bool { commands.isEmpty }

    /// The script that applies the plan.
    public var script: String {
        "set -e\n" + commands.joined(separator: "\n") + "\n"
    }
}

/// Why a step cannot be planned or applied on a host, as one sentence.
public struct StepFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Shared pieces of plans: atomic writes, ownership, modes.
enum FileCommands {
    /// Content read for a diff stops here: a larger file is not worth shipping to say it changed.
    static let diffContentLimit = 1 << 20

    static func parseMode(_ text: String) -> Int? { Int(text, radix: 8) }

    static func modeText(_ mode: Int) -> String { "0" + String(mode, radix: 8) }

    /// `chown`/`chmod` for what differs between `current` and the wanted owner, group and mode.
    static func attributeCommands(
        target: String, current: PathFacts.Attributes?, owner: String?, group: String?, mode: Int?, summary: inout [String]
    ) -> [String] {
        var commands: [String] = []
        let ownerChange = owner.flatMap { $0 == current?.owner ? nil : $0 }
        let groupChange = group.flatMap { $0 == current?.group ? nil : $0 }
        if ownerChange != nil || groupChange != nil {
            let spec = (ownerChange ?? "") + (groupChange.map { ":" + $0 } ?? "")
            commands.append("chown -- \(Shell.quote(spec)) \(target)")
            summary.append("owner \(current.map { "\($0.owner):\($0.group)" } ?? "-") -> \(owner ?? current?.owner ?? ""):\(group ?? current?.group ?? "")")
        }
        if let mode, mode != current?.mode {
            commands.append("chmod -- \(modeText(mode)) \(target)")
            summary.append("mode \(current.map { modeText($0.mode) } ?? "-") -> \(modeText(mode))")
        }
        return commands
    }

    /// Writes stdin to `path` so that the path holds either the old or the whole new content at
    /// any moment: a temporary file in the same directory (so `mv` is a rename on one file
    /// system), attributes set on it, the optional validation run on it, then renamed over the
    /// target. The EXIT trap removes the temporary file when anything fails or the session dies.
    static func atomicWrite(
        path: String, existing: PathFacts.Attributes?, owner: String?, group: String?, mode: Int?, validate: String?,
        backup: Bool, backupDirectory: String
    ) -> [String] {
        let p = Shell.quote(path)
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temp = Shell.quote((directory.isEmpty ? "." : directory) + "/.\(name).labctl-XXXXXX")
        var commands = [
            "t=$(mktemp -- \(temp))",
            #"trap 'rm -f "$t"' EXIT"#,
            #"cat > "$t""#,
        ]
        // mktemp makes 0600 files: carry over the old file's attributes unless told otherwise.
        if let mode {
            commands.append("chmod \(modeText(mode)) \"$t\"")
        } else if existing != nil {
            commands.append("chmod --reference=\(p) \"$t\"")
        } else {
            commands.append("chmod 0644 \"$t\"")
        }
        if owner != nil || group != nil {
            let spec = (owner ?? existing?.owner ?? "") + ((group ?? existing?.group).map { ":" + $0 } ?? "")
            commands.append("chown -- \(Shell.quote(spec)) \"$t\"")
        } else if existing != nil {
            commands.append("chown --reference=\(p) \"$t\"")
        }
        if let validate {
            // Its own `sh`, with the staged path as $1: the plan's `set -e` must not cut a
            // multi-command validate short (dash keeps errexit inside `$( )` even under `if !`),
            // and the user's command is quoted once instead of being spliced into ours.
            let command = Shell.quote(validate.replacingOccurrences(of: "%s", with: "\"$1\""))
            commands.append(#"if ! out=$(sh -c "# + command + #" labctl-validate "$t" 2>&1); then printf 'validation failed: %s\n' "$out" >&2; exit 3; fi"#)
        }
        if backup, existing != nil {
            // The backup's folder is known here: no `dirname` on the host.
            let copy = backupDirectory + path
            commands.append("mkdir -p -- \(Shell.quote((copy as NSString).deletingLastPathComponent))")
            commands.append("cp -p -- \(p) \(Shell.quote(copy)).$(date +%Y%m%dT%H%M%S)")
        }
        commands.append("mv -f -- \"$t\" \(p)")
        return commands
    }
}
