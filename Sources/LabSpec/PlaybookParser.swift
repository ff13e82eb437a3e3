import Foundation
import Yams

/// Turns playbook YAML into a `Playbook`, or into every problem found in it.
///
/// Parsing goes through `Yams.compose` (a `Node` tree with line/column marks) rather than
/// `YAMLDecoder`, because Codable errors carry coding paths, not positions, and stop at the
/// first problem; here every problem is collected with the place it was written.
public enum PlaybookParser {
    public static func parse(yaml: String, file: String) throws(PlaybookError) -> Playbook {
        if let (line, column) = excessiveNesting(in: yaml) {
            throw PlaybookError(issues: [PlaybookIssue(
                "the YAML is nested more than \(maximumDepth) levels deep; a playbook is a few levels deep: is this the right file?",
                at: .init(file: file, line: line, column: column))])
        }
        var collector = IssueCollector(file: file, yaml: yaml)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw PlaybookError(issues: [syntaxIssue(error, file: file)])
        } catch {
            throw PlaybookError(issues: [PlaybookIssue("YAML syntax error: \(error)", at: .init(file: file, line: 1, column: 1))])
        }
        guard let root else {
            throw PlaybookError(issues: [PlaybookIssue(
                "the playbook is empty; expected a list of steps, or a mapping with 'steps:' and 'handlers:'",
                at: .init(file: file, line: 1, column: 1))])
        }
        let playbook = collector.playbook(root)
        if !collector.issues.isEmpty {
            // In reading order, as an editor lists them.
            let sorted = collector.issues.enumerated().sorted { a, b in
                (a.element.location.line, a.element.location.column, a.offset) < (b.element.location.line, b.element.location.column, b.offset)
            }
            throw PlaybookError(issues: sorted.map(\.element))
        }
        return playbook
    }

    /// Larger playbooks are refused before parsing: a playbook is a few kilobytes.
    public static let maximumSize = 16 * 1_048_576
    /// Deeper YAML is refused before Yams, whose tree building recurses. A playbook is a few
    /// levels deep (steps, a step, its arguments, env).
    public static let maximumDepth = 64

    public static func parse(fileAt path: String) throws(PlaybookError) -> Playbook {
        func refuse(_ message: String, line: Int = 1, column: Int = 1) -> PlaybookError {
            PlaybookError(issues: [PlaybookIssue(message, at: .init(file: path, line: line, column: column))])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw refuse("no such playbook file")
        }
        if isDirectory.boolValue { throw refuse("is a folder, not a playbook; give a .yml file inside it") }
        guard access(path, R_OK) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw refuse("the playbook cannot be read by this user (permissions?); check its owner and mode")
        }
        if data.count > maximumSize {
            throw refuse("the file is \(data.count / 1_048_576) MB; a playbook is a few kilobytes (at most \(maximumSize / 1_048_576) MB): is it the right file?")
        }
        let bytes = [UInt8](data)
        if let bad = [JSONSyntaxCheck.firstInvalidUTF8(bytes, from: 0), bytes.firstIndex(of: 0)].compactMap({ $0 }).min() {
            let (line, column) = JSONSyntaxCheck.position(of: bad, in: bytes, from: 0)
            throw refuse(String(format: "the file is not UTF-8 text (byte 0x%02X), so not a YAML playbook; save it as UTF-8", bytes[bad]),
                         line: line, column: column)
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path)
    }

    /// Where the YAML nests deeper than `maximumDepth`, found without parsing: flow brackets
    /// outside quotes and comments, plus the block structure a line's indentation and leading
    /// `- ` entries can open (an upper bound on the block depth).
    static func excessiveNesting(in yaml: String) -> (line: Int, column: Int)? {
        var flow = 0
        var line = 1
        for text in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            defer { line += 1 }
            let bytes = Array(text.utf8)
            var column = 0
            var block = 0
            while column < bytes.count, bytes[column] == UInt8(ascii: " ") || bytes[column] == UInt8(ascii: "-") || bytes[column] == UInt8(ascii: "?") {
                if bytes[column] != UInt8(ascii: " ") { block += 1 }
                column += 1
            }
            if block + column / 2 > maximumDepth * 4 { return (line, column + 1) }
            var quote: UInt8?
            for (index, byte) in bytes.enumerated().dropFirst(column) {
                if let open = quote {
                    if byte == open { quote = nil }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    // A quote opens a quoted scalar only where a scalar can start.
                    if index == column || [UInt8(ascii: " "), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ",")].contains(bytes[index - 1]) { quote = byte }
                case UInt8(ascii: "#") where index == 0 || bytes[index - 1] == UInt8(ascii: " "):
                    break
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flow += 1
                    if flow + block > maximumDepth { return (line, index + 1) }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    flow = max(0, flow - 1)
                default:
                    continue
                }
                if byte == UInt8(ascii: "#") { break }
            }
        }
        return nil
    }

    static func syntaxIssue(_ error: YamlError, file: String) -> PlaybookIssue {
        func issue(_ context: YamlError.Context?, _ problem: String, _ mark: Mark) -> PlaybookIssue {
            let while_ = context.map { " (\($0.text) that started at \($0.mark.line):\($0.mark.column))" } ?? ""
            return PlaybookIssue("YAML syntax error: \(problem)\(while_)", at: .init(file: file, line: mark.line, column: mark.column))
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return issue(context, problem, mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return PlaybookIssue(
                "YAML error: the key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) appears twice in one mapping",
                at: .init(file: file, line: context.mark.line, column: context.mark.column))
        default:
            return PlaybookIssue("YAML syntax error: \(error)", at: .init(file: file, line: 1, column: 1))
        }
    }

    /// Every step type and its arguments (from `StepTypeSpec.all`), for messages and for the
    /// schema check.
    public static let stepTypes: [String: [String]] = Dictionary(
        uniqueKeysWithValues: StepTypeSpec.all.map { ($0.name, $0.argumentNames) })

    static let stepKeys = ["name", "hosts", "when", "notify", "become", "tags"]
    /// A rolling group: a step with `steps:` (docs/playbooks.md, "Rolling groups").
    static let groupKeys = ["name", "hosts", "become", "tags", "serial", "max_fail", "rotation", "steps"]
    static let rotationKeys = ["via", "serving", "take_out", "put_back"]
}

/// The ranges of a playbook's numbers (docs/playbooks.md).
public enum PlaybookLimits {
    /// A command's or wait_for's timeout: one second to one day.
    public static let timeoutSeconds = 1...86_400
    /// package's cache_valid_time: up to a year.
    public static let cacheValidSeconds = 0...31_536_000
}

/// What a YAML node is, in the words used by messages.
private func kindName(_ node: Node) -> String {
    switch node {
    case .scalar(let s): return s.tag.description.hasSuffix(":null") || s.string.isEmpty ? "nothing" : "'\(s.string)'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

private struct IssueCollector {
    let file: String
    var issues: [PlaybookIssue] = []
    /// Rolling groups seen so far: the next one's id.
    var groups = 0

    init(file: String, yaml: String) {
        self.file = file
        self.lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
    }

    let lines: [Substring]

    func location(_ node: Node) -> SourceLocation {
        let mark = node.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// Where a scalar's text itself starts (for positions inside templates): after the quote
    /// of a quoted scalar; on the next line, at its indentation, for a block scalar (| or >).
    func contentLocation(_ node: Node) -> SourceLocation {
        var location = location(node)
        guard case .scalar(let scalar) = node else { return location }
        switch scalar.style {
        case .singleQuoted, .doubleQuoted:
            location.column += 1
        case .literal, .folded:
            let next = location.line  // 0-based index of the line after the indicator
            let indent = next < lines.count ? lines[next].prefix(while: { $0 == " " }).count : 0
            location = SourceLocation(file: file, line: location.line + 1, column: indent + 1, indent: indent)
        default:
            break
        }
        return location
    }

    mutating func report(_ message: String, at node: Node) {
        issues.append(PlaybookIssue(message, at: location(node)))
    }

    mutating func playbook(_ root: Node) -> Playbook {
        var stepsNode: Node?
        var handlersNode: Node?
        var become = false
        switch root {
        case .sequence:
            stepsNode = root
        case .mapping(let mapping):
            for (key, value) in mapping {
                switch key.string ?? "" {
                case "steps": stepsNode = value
                case "handlers": handlersNode = value
                case "become": become = bool(value, what: "'become'") ?? false
                default:
                    let name = key.string ?? ""
                    report("unknown key '\(name)' at the top of the playbook\(Suggestion.hint(for: name, in: ["steps", "handlers", "become"])); expected 'steps', 'handlers' or 'become'", at: key)
                }
            }
            if stepsNode == nil { report("the playbook has no 'steps:' list", at: root) }
        default:
            report("a playbook must be a list of steps, or a mapping with 'steps:' and 'handlers:'; got \(kindName(root))", at: root)
        }
        var steps = stepList(stepsNode, isHandler: false)
        let handlers = stepList(handlersNode, isHandler: true)
        if become {
            for index in steps.indices where steps[index].become == nil { steps[index].become = true }
        }

        // Step names must be unique too: --start-at, the recap and the JSON report name steps by name.
        var stepLines: [String: Int] = [:]
        for step in steps {
            if let first = stepLines[step.name] {
                issues.append(PlaybookIssue("two steps are named '\(step.name)' (lines \(first) and \(step.location.line)); step names must be unique, since --start-at and the recap name steps by name", at: step.location))
            } else {
                stepLines[step.name] = step.location.line
            }
        }
        // Names must be unique among handlers (notify refers to them) and notify must name one.
        var handlerNames: Set<String> = []
        for handler in handlers {
            if !handlerNames.insert(handler.name).inserted {
                issues.append(PlaybookIssue("two handlers are named '\(handler.name)'; handler names must be unique", at: handler.location))
            }
        }
        for step in steps {
            for target in step.notify where !handlerNames.contains(target.value) {
                let hint = Suggestion.hint(for: target.value, in: handlerNames.sorted())
                let known = handlerNames.isEmpty ? "the playbook has no handlers" : "handlers: \(handlerNames.sorted().joined(separator: ", "))"
                issues.append(PlaybookIssue("notify names '\(target.value)', which is not a handler\(hint) (\(known))", at: target.location))
            }
        }
        return Playbook(file: file, steps: steps, handlers: become ? handlers.map { var h = $0; h.become = h.become ?? true; return h } : handlers)
    }

    mutating func stepList(_ node: Node?, isHandler: Bool) -> [PlaybookStep] {
        guard let node else { return [] }
        guard case .sequence(let sequence) = node else {
            report("'\(isHandler ? "handlers" : "steps")' must be a list of steps; got \(kindName(node))", at: node)
            return []
        }
        var steps: [PlaybookStep] = []
        for item in sequence {
            if !isHandler, case .mapping(let mapping) = item, mapping["steps"] != nil {
                steps += group(item, mapping)
            } else if let step = step(item, isHandler: isHandler) {
                steps.append(step)
            }
        }
        return steps
    }

    /// A rolling group, flattened: its steps, each carrying the group (`rollout`), with the
    /// group's hosts, `become` and tags.
    mutating func group(_ node: Node, _ mapping: Node.Mapping) -> [PlaybookStep] {
        let before = issues.count
        for (key, _) in mapping where !PlaybookParser.groupKeys.contains(key.string ?? "") {
            let name = key.string ?? ""
            let hint = Suggestion.hint(for: name, in: PlaybookParser.groupKeys)
            report("unknown key '\(name)' in a rolling group\(hint); a group takes \(PlaybookParser.groupKeys.joined(separator: ", ")) (its steps say what to do)", at: key)
        }
        let name = mapping["name"].flatMap { string($0, what: "the group's 'name'") }
        let label = name.map { "group '\($0)'" } ?? "a group"
        if mapping["name"] == nil { report("\(label) has no 'name'; every group needs one", at: node) }
        let hosts = mapping["hosts"].flatMap { stringList($0, what: "'hosts'") } ?? []
        if mapping["hosts"] == nil { report("\(label) has no 'hosts'; its steps run on them", at: node) }
        let become = mapping["become"].flatMap { bool($0, what: "'become'") }
        let tags = mapping["tags"].flatMap { stringList($0, what: "'tags'") }?.map(\.value) ?? []
        var serial = 1
        if let value = mapping["serial"], let number = int(value, what: "'serial'") {
            if number < 1 || number > 1000 { report("'serial' of \(label) must be between 1 and 1000 hosts at a time; got \(number)", at: value) }
            serial = number
        }
        var maxFail = 0
        if let value = mapping["max_fail"], let number = int(value, what: "'max_fail'") {
            if number < 0 || number > 1000 { report("'max_fail' of \(label) must be between 0 and 1000 failed hosts per batch; got \(number)", at: value) }
            maxFail = number
        }
        var rotation: Rotation?
        if let value = mapping["rotation"] {
            rotation = self.rotation(value, label: label)
        }
        guard let list = mapping["steps"], case .sequence(let sequence) = list else {
            if let list = mapping["steps"] { report("'steps' of \(label) must be a list of steps; got \(kindName(list))", at: list) }
            return []
        }
        if sequence.isEmpty { report("\(label) has no steps", at: list) }
        let rollout = Rollout(
            id: groups, name: name ?? "", hosts: hosts, serial: serial, maxFail: maxFail, rotation: rotation, location: location(node))
        groups += 1
        var steps: [PlaybookStep] = []
        for item in sequence {
            if case .mapping(let inner) = item {
                if let nested = inner["steps"] {
                    report("a group cannot hold another group; list its steps here instead", at: nested)
                    continue
                }
                if let value = inner["hosts"] {
                    report("a step of \(label) runs on the group's hosts; remove its 'hosts'", at: value)
                    continue
                }
            }
            guard var step = step(item, isHandler: false, inheritedHosts: hosts) else { continue }
            step.become = step.become ?? become
            step.tags += tags
            step.rollout = rollout
            steps.append(step)
        }
        return issues.count == before ? steps : []
    }

    mutating func rotation(_ node: Node, label: String) -> Rotation? {
        guard case .mapping(let mapping) = node else {
            report("'rotation' of \(label) must be a mapping with via, take_out and put_back; got \(kindName(node))", at: node)
            return nil
        }
        for (key, _) in mapping where !PlaybookParser.rotationKeys.contains(key.string ?? "") {
            let name = key.string ?? ""
            report("unknown key '\(name)' in 'rotation'\(Suggestion.hint(for: name, in: PlaybookParser.rotationKeys)); it takes \(PlaybookParser.rotationKeys.joined(separator: ", "))", at: key)
        }
        func command(_ key: String) -> TemplateArgument? {
            guard let value = mapping[key] else { return nil }
            return string(value, what: "'\(key)' of rotation").map { Located($0, at: contentLocation(value)) }
        }
        let via = mapping["via"].flatMap { stringList($0, what: "'via' of rotation") } ?? []
        if mapping["via"] == nil { report("'rotation' of \(label) has no 'via': name the load balancer's role or host", at: node) }
        let takeOut = command("take_out")
        let putBack = command("put_back")
        if mapping["take_out"] == nil || mapping["put_back"] == nil {
            report("'rotation' of \(label) needs both 'take_out' and 'put_back' commands", at: node)
        }
        guard let takeOut, let putBack, !via.isEmpty else { return nil }
        return Rotation(via: via, serving: command("serving"), takeOut: takeOut, putBack: putBack)
    }

    mutating func step(_ node: Node, isHandler: Bool, inheritedHosts: [Located<String>]? = nil) -> PlaybookStep? {
        guard case .mapping(let mapping) = node else {
            report("a step must be a mapping with 'name:', 'hosts:' and one step type; got \(kindName(node))", at: node)
            return nil
        }
        let before = issues.count
        var name: String?
        var hosts: [Located<String>] = inheritedHosts ?? []
        var hostsSeen = inheritedHosts != nil
        var when: Located<Condition>?
        var notify: [Located<String>] = []
        var become: Bool?
        var tags: [String] = []
        var typeEntries: [(key: Node, value: Node)] = []

        for (key, value) in mapping {
            let keyName = key.string ?? ""
            switch keyName {
            case "name": name = string(value, what: "the step's 'name'")
            case "hosts":
                hostsSeen = true
                hosts = stringList(value, what: "'hosts'") ?? []
                if hostsSeen, hosts.isEmpty, issues.count == before { report("'hosts' is empty; name roles, hosts or \"all\"", at: value) }
            case "when": when = condition(value)
            case "notify": notify = stringList(value, what: "'notify'") ?? []
            case "become": become = bool(value, what: "'become'")
            case "tags": tags = (stringList(value, what: "'tags'") ?? []).map(\.value)
            default:
                if PlaybookParser.stepTypes[keyName] != nil {
                    typeEntries.append((key, value))
                } else {
                    let candidates = PlaybookParser.stepTypes.keys.sorted() + PlaybookParser.stepKeys
                    let hint = Suggestion.hint(for: keyName, in: candidates)
                    report("unknown step type '\(keyName)'\(hint) (step types: \(PlaybookParser.stepTypes.keys.sorted().joined(separator: ", ")))", at: key)
                }
            }
        }
        let stepLabel = name.map { "step '\($0)'" } ?? "a step"
        if name == nil, mapping["name"] == nil { report("\(stepLabel) has no 'name'; every step needs one", at: node) }
        if !isHandler, !hostsSeen { report("\(stepLabel) has no 'hosts'; name roles, hosts or \"all\"", at: node) }
        if isHandler, hostsSeen, let value = mapping["hosts"] {
            report("a handler takes no 'hosts'; it runs on the hosts that notified it", at: value)
        }
        if isHandler, let value = mapping["notify"] {
            report("a handler cannot notify other handlers; list them in the step's notify instead (handlers run in the order they are written)", at: value)
        }
        if isHandler, let value = mapping["flush_handlers"] {
            report("flush_handlers is a step, not a handler", at: value)
        }
        var action: StepAction?
        switch typeEntries.count {
        case 0:
            // An unknown type was already reported; only say "no type" when there was none at all.
            if issues.count == before || !mapping.keys.contains(where: { key in
                !(PlaybookParser.stepKeys.contains(key.string ?? ""))
            }) {
                report("\(stepLabel) has no step type; expected one of: \(PlaybookParser.stepTypes.keys.sorted().joined(separator: ", "))", at: node)
            }
        case 1:
            action = self.action(type: typeEntries[0].key, arguments: typeEntries[0].value, stepLabel: stepLabel)
        default:
            let names = typeEntries.map { "'\($0.key.string ?? "")'" }.joined(separator: " and ")
            report("\(stepLabel) has \(typeEntries.count) step types, \(names); a step has exactly one", at: typeEntries[1].key)
        }
        guard issues.count == before, let name, let action else { return nil }
        return PlaybookStep(name: name, hosts: hosts, action: action, when: when, notify: notify, become: become, tags: tags, location: location(node))
    }

    // MARK: common values

    mutating func string(_ node: Node, what: String) -> String? {
        if case .scalar(let scalar) = node, !scalar.string.isEmpty || scalar.style != .plain {
            return scalar.string
        }
        report("\(what) must be a string; got \(kindName(node))", at: node)
        return nil
    }

    mutating func stringList(_ node: Node, what: String) -> [Located<String>]? {
        switch node {
        case .scalar:
            return string(node, what: what).map { [Located($0, at: contentLocation(node))] }
        case .sequence(let sequence):
            var values: [Located<String>] = []
            for element in sequence {
                guard let value = string(element, what: "each entry of \(what)") else { return nil }
                values.append(Located(value, at: contentLocation(element)))
            }
            return values
        default:
            report("\(what) must be a string or a list of strings; got \(kindName(node))", at: node)
            return nil
        }
    }

    mutating func bool(_ node: Node, what: String) -> Bool? {
        if case .scalar(let scalar) = node {
            switch scalar.string.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default: break
            }
        }
        report("\(what) must be true or false; got \(kindName(node))", at: node)
        return nil
    }

    mutating func int(_ node: Node, what: String) -> Int? {
        if case .scalar(let scalar) = node, let value = Int(scalar.string), value >= 0 { return value }
        report("\(what) must be a whole number (no quotes, no unit); got \(kindName(node))", at: node)
        return nil
    }

    /// `when: app.enabled`, `when: not app.enabled`, `when: app.source == "git"`, `!=`.
    mutating func condition(_ node: Node) -> Located<Condition>? {
        guard let text = string(node, what: "'when'") else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let variablePattern = #"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"#
        func isVariable(_ s: String) -> Bool { s.range(of: variablePattern, options: .regularExpression) != nil }
        func literal(_ s: String) -> String {
            let s = s.trimmingCharacters(in: .whitespaces)
            if s.count >= 2, let first = s.first, first == s.last, first == "\"" || first == "'" {
                return String(s.dropFirst().dropLast())
            }
            return s
        }
        for (op, make) in [("==", Condition.equals), ("!=", Condition.notEquals)] {
            if let range = trimmed.range(of: op) {
                let variable = trimmed[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                if isVariable(variable) {
                    return Located(make(variable, literal(String(trimmed[range.upperBound...]))), at: location(node))
                }
            }
        }
        if trimmed.hasPrefix("not "), isVariable(String(trimmed.dropFirst(4)).trimmingCharacters(in: .whitespaces)) {
            return Located(.falsy(variable: String(trimmed.dropFirst(4)).trimmingCharacters(in: .whitespaces)), at: location(node))
        }
        if isVariable(trimmed) { return Located(.truthy(variable: trimmed), at: location(node)) }
        report("'when' must be a variable (app.enabled), its negation (not app.enabled) or a comparison (app.source == \"git\"); got '\(text)'", at: node)
        return nil
    }

    // MARK: step types

    mutating func action(type: Node, arguments node: Node, stepLabel: String) -> StepAction? {
        let typeName = type.string ?? ""
        if typeName == "flush_handlers" {
            guard bool(node, what: "'flush_handlers'") == true else {
                if node.string.flatMap({ ["false", "no", "off"].contains($0.lowercased()) }) == true {
                    report("'flush_handlers' takes only true", at: node)
                }
                return nil
            }
            return .flushHandlers
        }
        var args = Arguments(typeName: typeName, typeNode: type, stepLabel: stepLabel)
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping { args.values[key.string ?? ""] = (key, value) }
        case .scalar where typeName == "command":
            args.values["run"] = (type, node)  // `command: "echo hi"` shorthand
        case .scalar where typeName == "package", .sequence where typeName == "package":
            args.values["name"] = (type, node)  // `package: nginx` / `package: [nginx, curl]`
        default:
            report("the arguments of \(typeName) must be a mapping (e.g. \(typeName):\\n  \(PlaybookParser.stepTypes[typeName]![0]): ...); got \(kindName(node))", at: node)
            return nil
        }
        let before = issues.count
        let allowed = PlaybookParser.stepTypes[typeName]!
        for (name, (key, _)) in args.values.sorted(by: { $0.key < $1.key }) where !allowed.contains(name) {
            report("unknown argument '\(name)' for \(typeName)\(Suggestion.hint(for: name, in: allowed)) (arguments: \(allowed.joined(separator: ", ")))", at: key)
        }
        let action: StepAction?
        switch typeName {
        case "package": action = package(&args)
        case "file": action = file(&args)
        case "directory": action = directory(&args)
        case "link": action = link(&args)
        case "attributes": action = attributes(&args)
        case "block": action = block(&args)
        case "line": action = line(&args)
        case "service": action = service(&args)
        case "command": action = command(&args)
        case "git": action = git(&args)
        case "upload": action = upload(&args)
        case "wait_for": action = waitFor(&args)
        default: action = nil
        }
        return issues.count == before ? action : nil
    }

    /// The arguments of one step type, read one by one with type checks.
    struct Arguments {
        var typeName: String
        var typeNode: Node
        var stepLabel: String
        var values: [String: (key: Node, value: Node)] = [:]
    }

    mutating func missing(_ name: String, _ args: Arguments) {
        report("\(args.stepLabel): \(args.typeName) needs the argument '\(name)'", at: args.typeNode)
    }

    mutating func text(_ name: String, _ args: Arguments, required: Bool = false) -> Located<String>? {
        guard let (_, value) = args.values[name] else {
            if required { missing(name, args) }
            return nil
        }
        return string(value, what: "'\(name)' of \(args.typeName)").map { Located($0, at: contentLocation(value)) }
    }

    mutating func flag(_ name: String, _ args: Arguments, default fallback: Bool) -> Bool {
        guard let (_, value) = args.values[name] else { return fallback }
        return bool(value, what: "'\(name)' of \(args.typeName)") ?? fallback
    }

    mutating func number(_ name: String, _ args: Arguments, in range: ClosedRange<Int>? = nil, unit: String = "") -> Int? {
        guard let (_, value) = args.values[name] else { return nil }
        guard let number = int(value, what: "'\(name)' of \(args.typeName)") else { return nil }
        if let range, !range.contains(number) {
            report("'\(name)' of \(args.typeName) must be between \(range.lowerBound) and \(range.upperBound)\(unit); got \(number)", at: value)
            return nil
        }
        return number
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ name: String, _ args: Arguments) -> E? where E.RawValue == String {
        guard let (_, value) = args.values[name] else { return nil }
        let allowed = E.allCases.map(\.rawValue)
        if case .scalar(let scalar) = value, let parsed = E(rawValue: scalar.string) { return parsed }
        let got = kindName(value)
        report("'\(name)' of \(args.typeName) must be one of \(allowed.joined(separator: ", ")); got \(got)\(Suggestion.hint(for: value.string ?? "", in: allowed))", at: value)
        return nil
    }

    mutating func mode(_ args: Arguments) -> Located<String>? {
        guard let (_, value) = args.values["mode"] else { return nil }
        if case .scalar(let scalar) = value, scalar.string.range(of: "^0?[0-7]{3,4}$", options: .regularExpression) != nil {
            return Located(scalar.string, at: location(value))
        }
        report("'mode' of \(args.typeName) must be an octal mode such as \"0644\"; got \(kindName(value))", at: value)
        return nil
    }

    mutating func regex(_ name: String, _ args: Arguments) -> Located<String>? {
        guard let value = text(name, args) else { return nil }
        // A templated pattern is checked once rendered, per host.
        if value.value.contains("{{") { return value }
        do {
            _ = try NSRegularExpression(pattern: value.value, options: [.anchorsMatchLines])
            return value
        } catch {
            issues.append(PlaybookIssue("'\(name)' of \(args.typeName) is not a valid regular expression: \(value.value)", at: value.location))
            return nil
        }
    }

    mutating func package(_ args: inout Arguments) -> StepAction? {
        var names: [Located<String>] = []
        if let (_, value) = args.values["name"] {
            names = stringList(value, what: "'name' of package") ?? []
        } else {
            missing("name", args)
        }
        let state: PresenceState = choice("state", args) ?? .present
        return .package(PackageArguments(names: names, state: state, cacheValidTime: number("cache_valid_time", args, in: PlaybookLimits.cacheValidSeconds, unit: " seconds")))
    }

    mutating func file(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let content = text("content", args)
        let template = text("template", args)
        let state: PresenceState = choice("state", args) ?? .present
        if content != nil, template != nil, let (key, _) = args.values["template"] {
            report("\(args.stepLabel): file takes 'content' or 'template', not both", at: key)
        }
        if state == .present, content == nil, template == nil, args.values["content"] == nil, args.values["template"] == nil {
            report("\(args.stepLabel): file needs the argument 'content' (inline) or 'template' (a file in templates/)", at: args.typeNode)
        }
        guard let path else { return nil }
        return .file(FileArguments(
            path: path, content: content, template: template, owner: text("owner", args), group: text("group", args),
            mode: mode(args), validate: text("validate", args), backup: flag("backup", args, default: true), state: state))
    }

    mutating func directory(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let state: PresenceState = choice("state", args) ?? .present
        guard let path else { return nil }
        return .directory(DirectoryArguments(path: path, owner: text("owner", args), group: text("group", args), mode: mode(args), state: state))
    }

    mutating func link(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let state: PresenceState = choice("state", args) ?? .present
        let target = text("target", args, required: state == .present)
        let force = flag("force", args, default: false)
        guard let path else { return nil }
        return .link(LinkArguments(path: path, target: target, force: force, state: state))
    }

    mutating func attributes(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let owner = text("owner", args)
        let group = text("group", args)
        let mode = mode(args)
        if args.values["owner"] == nil, args.values["group"] == nil, args.values["mode"] == nil {
            report("\(args.stepLabel): attributes needs 'owner', 'group' or 'mode'", at: args.typeNode)
        }
        guard let path else { return nil }
        return .attributes(AttributesArguments(path: path, owner: owner, group: group, mode: mode))
    }

    mutating func block(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let state: PresenceState = choice("state", args) ?? .present
        let block = text("block", args, required: state == .present) ?? Located("", at: location(args.typeNode))
        let marker = text("marker", args) ?? Located(BlockArguments.defaultMarker, at: location(args.typeNode))
        if !marker.value.contains("{mark}") {
            issues.append(PlaybookIssue("'marker' of block must contain {mark} (replaced by BEGIN and END)", at: marker.location))
        }
        let after = regex("insert_after", args)
        let before = regex("insert_before", args)
        if after != nil, before != nil, let (key, _) = args.values["insert_before"] {
            report("\(args.stepLabel): block takes 'insert_after' or 'insert_before', not both", at: key)
        }
        guard let path else { return nil }
        return .block(BlockArguments(
            path: path, block: block, marker: marker, insertAfter: after, insertBefore: before,
            validate: text("validate", args), backup: flag("backup", args, default: true), state: state))
    }

    mutating func line(_ args: inout Arguments) -> StepAction? {
        let path = text("path", args, required: true)
        let state: PresenceState = choice("state", args) ?? .present
        let line = text("line", args, required: state == .present)
        let regexp = regex("regexp", args)
        if state == .absent, line == nil, regexp == nil, args.values["line"] == nil, args.values["regexp"] == nil {
            report("\(args.stepLabel): line with state absent needs 'line' or 'regexp'", at: args.typeNode)
        }
        guard let path else { return nil }
        return .line(LineArguments(
            path: path, line: line, regexp: regexp, insertAfter: regex("insert_after", args), validate: text("validate", args),
            backup: flag("backup", args, default: true), create: flag("create", args, default: false), state: state))
    }

    mutating func service(_ args: inout Arguments) -> StepAction? {
        let name = text("name", args, required: true)
        var enabled: Bool?
        if let (_, value) = args.values["enabled"] { enabled = bool(value, what: "'enabled' of service") }
        let state: ServiceState? = choice("state", args)
        let daemonReload = flag("daemon_reload", args, default: false)
        if enabled == nil, state == nil, !daemonReload, args.values["enabled"] == nil, args.values["state"] == nil {
            report("\(args.stepLabel): service needs 'state' (\(ServiceState.allCases.map(\.rawValue).joined(separator: ", "))) or 'enabled'", at: args.typeNode)
        }
        guard let name else { return nil }
        return .service(ServiceArguments(name: name, enabled: enabled, state: state, daemonReload: daemonReload))
    }

    mutating func command(_ args: inout Arguments) -> StepAction? {
        let run = text("run", args, required: true)
        guard let run else { return nil }
        var env: [String: TemplateArgument] = [:]
        if let (_, value) = args.values["env"] {
            if case .mapping(let mapping) = value {
                for (key, entry) in mapping {
                    let name = key.string ?? ""
                    guard name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                        report("'env' of command: '\(name)' is not a valid environment variable name", at: key)
                        continue
                    }
                    if let text = string(entry, what: "'env.\(name)' of command") { env[name] = Located(text, at: contentLocation(entry)) }
                }
            } else {
                report("'env' of command must be a mapping of names to values; got \(kindName(value))", at: value)
            }
        }
        return .command(CommandArguments(
            run: run, creates: text("creates", args), unless: text("unless", args), chdir: text("chdir", args), timeout: number("timeout", args, in: PlaybookLimits.timeoutSeconds, unit: " seconds"),
            user: text("user", args), env: env))
    }

    mutating func git(_ args: inout Arguments) -> StepAction? {
        let repo = text("repo", args, required: true)
        let dest = text("dest", args, required: true)
        let ref = text("ref", args) ?? Located("HEAD", at: location(args.typeNode))
        guard let repo, let dest else { return nil }
        return .git(GitArguments(repo: repo, dest: dest, ref: ref))
    }

    mutating func upload(_ args: inout Arguments) -> StepAction? {
        let src = text("src", args, required: true)
        let dest = text("dest", args, required: true)
        var keep: [String] = []
        if let (_, value) = args.values["keep"] {
            keep = (stringList(value, what: "'keep' of upload") ?? []).map(\.value)
            for name in keep where name.isEmpty || name.contains("/") || name == "." || name == ".." {
                report("\(args.stepLabel): each entry of 'keep' must be a name directly inside 'dest' (no '/'); got '\(name)'", at: value)
            }
        }
        guard let src, let dest else { return nil }
        return .upload(UploadArguments(src: src, dest: dest, owner: text("owner", args), group: text("group", args), keep: keep))
    }

    mutating func waitFor(_ args: inout Arguments) -> StepAction? {
        let port = number("port", args)
        let url = text("url", args)
        if (port == nil) == (url == nil), args.values["port"] == nil || args.values["url"] != nil {
            if args.values["port"] == nil, args.values["url"] == nil {
                report("\(args.stepLabel): wait_for needs 'port' or 'url'", at: args.typeNode)
            } else if port != nil, url != nil, let (key, _) = args.values["url"] {
                report("\(args.stepLabel): wait_for takes 'port' or 'url', not both", at: key)
            }
        }
        if let port, !(1...65535).contains(port), let (_, value) = args.values["port"] {
            report("'port' of wait_for must be between 1 and 65535; got \(port)", at: value)
        }
        return .waitFor(WaitForArguments(port: port, host: text("host", args), url: url, unit: text("unit", args), timeout: number("timeout", args, in: PlaybookLimits.timeoutSeconds, unit: " seconds") ?? 60))
    }
}
