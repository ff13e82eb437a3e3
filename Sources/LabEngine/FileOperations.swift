import Foundation
import SSH
import LabSpec

/// `file`: a file with this content, owner and mode (or absent).
public struct FileOperation: StepOperation {
    public var path: String
    public var content: String?
    public var owner: String?
    public var group: String?
    public var mode: Int?
    public var validate: String?
    public var backup: Bool
    public var state: PresenceState
    public var options: PlanOptions

    public init(
        path: String, content: String?, owner: String? = nil, group: String? = nil, mode: Int? = nil,
        validate: String? = nil, backup: Bool = true, state: PresenceState = .present, options: PlanOptions = .init()
    ) {
        self.path = path
        self.content = content
        self.owner = owner
        self.group = group
        self.mode = mode
        self.validate = validate
        self.backup = backup
        self.state = state
        self.options = options
    }

    public var probe: String { "" }
    public var pathProbe: PathProbe? {
        PathProbe(path, checksum: true, content: options.diff, contentLimit: FileCommands.diffContentLimit, parent: true)
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        let found = PathFacts(facts)
        let p = Shell.quote(path)
        if state == .absent {
            switch found.kind {
            case .missing: return .unchanged
            case .directory: throw StepFailure("\(path) is a directory, not a file; use a directory step to remove it")
            case .file, .dangling, .other:
                return StepPlan(
                    commands: ["rm -f -- \(p)"], diff: options.diff ? UnifiedDiff.make(old: found.text, new: "", path: path) : nil,
                    summary: ["remove \(path)"])
            }
        }
        switch found.kind {
        case .file, .missing, .dangling: break
        case .directory: throw StepFailure("\(path) exists and is a directory; remove it or choose another path")
        case .other: throw StepFailure("\(path) exists and is not a regular file; remove it or choose another path")
        }
        guard found.parentExists == true else {
            throw StepFailure("the directory \((path as NSString).deletingLastPathComponent) does not exist; add a directory step before this one")
        }
        let wanted = Array((content ?? "").utf8)
        let existing = found.kind == .file ? found.attributes : nil
        let sameContent = found.kind == .file && found.sha256 == SHA256Digest.hex(wanted)
        var summary: [String] = []
        if sameContent {
            let commands = FileCommands.attributeCommands(
                target: p, current: existing, owner: owner, group: group, mode: mode, summary: &summary)
            return commands.isEmpty ? .unchanged : StepPlan(commands: commands, summary: summary)
        }
        summary.append(found.kind == .file ? "change the content of \(path)" : "create \(path)")
        let diff = !options.diff ? nil : found.content == .tooLarge
            ? "--- \(path)\n+++ \(path)\n@@ the old file is larger than 1 MiB; not shown @@\n"
            : UnifiedDiff.make(old: found.text, new: content ?? "", path: path)
        let commands = FileCommands.atomicWrite(
            path: found.writePath(for: path), existing: existing, owner: owner, group: group, mode: mode, validate: validate,
            backup: backup, backupDirectory: options.backupDirectory)
        return StepPlan(commands: commands, stdin: wanted, diff: diff, summary: summary)
    }
}

/// `directory`: a directory with this owner and mode (or absent, with its contents).
public struct DirectoryOperation: StepOperation {
    public var path: String
    public var owner: String?
    public var group: String?
    public var mode: Int?
    public var state: PresenceState

    public init(path: String, owner: String? = nil, group: String? = nil, mode: Int? = nil, state: PresenceState = .present) {
        self.path = path
        self.owner = owner
        self.group = group
        self.mode = mode
        self.state = state
    }

    public var probe: String { "" }
    public var pathProbe: PathProbe? { PathProbe(path) }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        let found = PathFacts(facts)
        let p = Shell.quote(path)
        if state == .absent {
            switch found.kind {
            case .missing: return .unchanged
            case .directory: return StepPlan(commands: ["rm -rf -- \(p)"], summary: ["remove \(path) and everything in it"])
            case .file, .dangling, .other: throw StepFailure("\(path) is not a directory; refusing to remove it as one")
            }
        }
        var summary: [String] = []
        switch found.kind {
        case .directory:
            let commands = FileCommands.attributeCommands(
                target: p, current: found.attributes, owner: owner, group: group, mode: mode, summary: &summary)
            return commands.isEmpty ? .unchanged : StepPlan(commands: commands, summary: summary)
        case .missing:
            summary.append("create \(path)")
            var commands = ["mkdir -p -- \(p)"]
            commands += FileCommands.attributeCommands(target: p, current: nil, owner: owner, group: group, mode: mode, summary: &summary)
            return StepPlan(commands: commands, summary: summary)
        case .file, .dangling, .other:
            throw StepFailure("\(path) exists and is not a directory; remove it or choose another path")
        }
    }
}

/// Edits of an existing text file computed here from its full content (block and line steps),
/// then written back atomically like a file step.
protocol TextEdit: StepOperation {
    var path: String { get }
    var validate: String? { get }
    var backup: Bool { get }
    var options: PlanOptions { get }
    var createsMissingFile: Bool { get }
    /// The file's lines after the edit (the same lines when there is nothing to do).
    func edit(_ lines: [String]) throws(StepFailure) -> [String]
}

extension TextEdit {
    public var probe: String { "" }
    public var pathProbe: PathProbe? { PathProbe(path, content: true, parent: true) }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        let found = PathFacts(facts)
        var old = ""
        switch found.kind {
        case .file:
            guard case .bytes(let bytes) = found.content else {
                throw StepFailure("could not read \(path) on the host")
            }
            old = String(decoding: bytes, as: UTF8.self)
        case .missing where createsMissingFile:
            guard found.parentExists == true else {
                throw StepFailure("the directory \((path as NSString).deletingLastPathComponent) does not exist; add a directory step before this one")
            }
        case .missing, .dangling:
            throw StepFailure("\(path) does not exist on the host")
        case .directory, .other:
            throw StepFailure("\(path) is not a regular file")
        }
        var lines = UnifiedDiff.lines(old)
        lines = try edit(lines)
        var new = lines.joined(separator: "\n")
        if !lines.isEmpty { new += "\n" }
        // Keep a file that had no final newline as it was when the edit left its end alone.
        if !old.isEmpty, !old.hasSuffix("\n"), new.dropLast() == old { new = old }
        if new == old, found.kind == .file { return .unchanged }
        let existing = found.kind == .file ? found.attributes : nil
        let commands = FileCommands.atomicWrite(
            path: found.writePath(for: path), existing: existing, owner: nil, group: nil, mode: nil, validate: validate, backup: backup,
            backupDirectory: options.backupDirectory)
        return StepPlan(
            commands: commands, stdin: Array(new.utf8),
            diff: options.diff ? UnifiedDiff.make(old: old, new: new, path: path) : nil,
            summary: ["edit \(path)"])
    }

    func regex(_ pattern: String) throws(StepFailure) -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern)
        } catch {
            throw StepFailure("not a valid regular expression: \(pattern)")
        }
    }
}

extension NSRegularExpression {
    func matches(_ line: String) -> Bool {
        firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
    }
}

/// `block`: lines between two marker lines (Ansible's blockinfile). A new block goes after
/// (or before) the last line matching the anchor; later runs replace it where it is.
public struct ManagedBlockOperation: TextEdit {
    public var path: String
    public var block: String
    public var marker: String
    public var insertAfter: String?
    public var insertBefore: String?
    public var validate: String?
    public var backup: Bool
    public var state: PresenceState
    public var options: PlanOptions
    var createsMissingFile: Bool { false }

    public init(
        path: String, block: String, marker: String = BlockArguments.defaultMarker, insertAfter: String? = nil,
        insertBefore: String? = nil, validate: String? = nil, backup: Bool = true, state: PresenceState = .present,
        options: PlanOptions = .init()
    ) {
        self.path = path
        self.block = block
        self.marker = marker
        self.insertAfter = insertAfter
        self.insertBefore = insertBefore
        self.validate = validate
        self.backup = backup
        self.state = state
        self.options = options
    }

    func edit(_ lines: [String]) throws(StepFailure) -> [String] {
        let begin = marker.replacingOccurrences(of: "{mark}", with: "BEGIN")
        let end = marker.replacingOccurrences(of: "{mark}", with: "END")
        func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespaces) }
        let beginIndex = lines.firstIndex { trimmed($0) == begin }
        let endIndex = beginIndex.flatMap { b in lines[b...].firstIndex { trimmed($0) == end } }
        var lines = lines
        let content = UnifiedDiff.lines(block)
        let body = [begin] + content + [end]
        if let beginIndex, let endIndex {
            if state == .absent {
                lines.removeSubrange(beginIndex...endIndex)
            } else {
                // Only what is between the markers is replaced: markers someone indented stay.
                lines.replaceSubrange((beginIndex + 1)..<endIndex, with: content)
            }
            return lines
        }
        if beginIndex != nil {
            throw StepFailure("\(path) has the line '\(begin)' but no '\(end)' after it; fix the file by hand")
        }
        guard state == .present else { return lines }
        if let insertAfter {
            let anchor = try regex(insertAfter)
            guard let index = lines.lastIndex(where: { anchor.matches($0) }) else {
                throw StepFailure("no line of \(path) matches insert_after '\(insertAfter)'")
            }
            lines.insert(contentsOf: body, at: index + 1)
        } else if let insertBefore {
            let anchor = try regex(insertBefore)
            guard let index = lines.lastIndex(where: { anchor.matches($0) }) else {
                throw StepFailure("no line of \(path) matches insert_before '\(insertBefore)'")
            }
            lines.insert(contentsOf: body, at: index)
        } else {
            lines += body
        }
        return lines
    }
}

/// `line`: one line present (replacing the last line that matches `regexp`) or absent.
public struct LineOperation: TextEdit {
    public var path: String
    public var line: String?
    public var regexp: String?
    public var insertAfter: String?
    public var validate: String?
    public var backup: Bool
    public var create: Bool
    public var state: PresenceState
    public var options: PlanOptions
    var createsMissingFile: Bool { create && state == .present }

    public init(
        path: String, line: String?, regexp: String? = nil, insertAfter: String? = nil, validate: String? = nil,
        backup: Bool = true, create: Bool = false, state: PresenceState = .present, options: PlanOptions = .init()
    ) {
        self.path = path
        self.line = line
        self.regexp = regexp
        self.insertAfter = insertAfter
        self.validate = validate
        self.backup = backup
        self.create = create
        self.state = state
        self.options = options
    }

    func edit(_ lines: [String]) throws(StepFailure) -> [String] {
        var lines = lines
        let pattern = try regexp.map { (p) throws(StepFailure) in try regex(p) }
        func matches(_ candidate: String) -> Bool {
            if let pattern { return pattern.matches(candidate) }
            return candidate == line
        }
        if state == .absent {
            lines.removeAll(where: matches)
            return lines
        }
        guard let line else { return lines }
        if let index = lines.lastIndex(where: matches) {
            lines[index] = line
            return lines
        }
        if lines.contains(line) { return lines }
        if let insertAfter {
            let anchor = try regex(insertAfter)
            if let index = lines.lastIndex(where: { anchor.matches($0) }) {
                lines.insert(line, at: index + 1)
                return lines
            }
        }
        lines.append(line)
        return lines
    }
}
