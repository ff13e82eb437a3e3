import Foundation
import LabSpec
import Mustache
import Synchronization

/// Templates read the inventory's own JSON values (LabSpec's `JSONValue`); a JSON null is
/// an empty, false value to them.
extension JSONValue {
    /// What swift-mustache walks: plain Swift values, dictionaries for maps (they conform to
    /// `MustacheParent`), arrays for lists.
    var mustacheObject: Any {
        switch self {
        case .null: return ""
        case .string(let s): return s
        case .integer(let i): return i
        case .double(let d): return d
        case .bool(let b): return b
        case .array(let l): return l.map(\.mustacheObject)
        case .object(let m): return m.mapValues(\.mustacheObject)
        }
    }

    /// Text for `when:` comparisons.
    public var text: String {
        switch self {
        case .null: return ""
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        case .array(let l): return l.map(\.text).joined(separator: ",")
        case .object: return ""
        }
    }

    /// Mustache's idea of truth: false, "", 0 and empty lists are false.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .string(let s): return !s.isEmpty && s != "false"
        case .integer(let i): return i != 0
        case .double(let d): return d != 0
        case .bool(let b): return b
        case .array(let l): return !l.isEmpty
        case .object: return true
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let m) = self { return m[key] }
        return nil
    }
}

/// How a template's values are written into the text.
public enum TemplateMode: Sendable, Hashable {
    /// As they are: config files, paths, names (the step quotes whole arguments itself).
    case text
    /// Each value one quoted shell word: `run`, `unless`, `validate` and shell-script templates,
    /// so that no inventory or playbook value can become shell syntax.
    case shell

    var contentTypeName: String {
        switch self {
        case .text: return "TEXT"
        case .shell:
            _ = ShellContentType.registered
            return ShellContentType.name
        }
    }

    /// A template file is shell text when its name ends in `.sh` or its first line starts a
    /// POSIX shell or bash (`#!/bin/sh`, `#!/usr/bin/env bash`...).
    public static func forTemplateFile(named name: String, text: String) -> TemplateMode {
        if name.hasSuffix(".sh") { return .shell }
        let first = text.prefix(while: { $0 != "\n" })
        guard first.hasPrefix("#!") else { return .text }
        let words = first.dropFirst(2).split(separator: " ")
        let program = words.first.map { ($0 as Substring).split(separator: "/").last.map(String.init) ?? "" } ?? ""
        let interpreter = program == "env" ? (words.dropFirst().first.map(String.init) ?? "") : program
        return ["sh", "bash", "dash", "ash", "ksh", "zsh"].contains(interpreter) ? .shell : .text
    }
}

/// swift-mustache's escaping hook, used for shell quoting instead of HTML escaping.
struct ShellContentType: MustacheContentType {
    static let name = "LABCTL_SHELL"
    /// Registered once, the first time a shell template renders.
    static let registered: Void = MustacheContentTypes.register(ShellContentType(), named: name)

    func escapeText(_ text: String) -> String { Shell.quote(text) }
}

/// A template variable that is not in the context, with where the template names it.
public struct TemplateIssue: Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var location: SourceLocation
    public var description: String { "\(location): \(message)" }
}

public struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    public var issues: [TemplateIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Everything a template can name for one host: `domain`, `app`, `nginx`, `host` (name,
/// address, roles, vars), `vars` (the host's variables), `roles.<role>` (a list of hosts with
/// name and address) and `hosts` (every host).
///
/// Rendering is done by swift-mustache. Undefined variables must be errors, and
/// swift-mustache renders a missing key as "" without telling anyone (its token tree is
/// internal, so it cannot be inspected either). So every template is first scanned for its
/// tags here and each name is resolved against the context with Mustache's own lookup rules
/// (the context stack of enclosing sections, dotted names); anything unresolved is reported
/// with its line and column, and rendering only happens when nothing is missing.
public struct TemplateContext: Sendable, Hashable {
    public let root: [String: JSONValue]
    /// What swift-mustache walks, made once per context and not once per render: a context
    /// holds every host of the inventory, so converting it for each argument made planning
    /// grow with hosts squared.
    private let mustache: MustacheRoot

    public init(_ root: [String: JSONValue]) {
        self.init(root, converted: [:])
    }

    /// `converted`: top-level values already converted for Mustache, shared by the contexts
    /// of a fleet (every host's `hosts` and `roles` are the same).
    init(_ root: [String: JSONValue], converted: [String: Any]) {
        self.root = root
        self.mustache = MustacheRoot(root: root, converted: converted)
    }

    public static func == (a: TemplateContext, b: TemplateContext) -> Bool { a.root == b.root }
    public func hash(into hasher: inout Hasher) { hasher.combine(root) }

    /// The value at a dotted path (`app.port`), or nil.
    public func value(at path: String) -> JSONValue? {
        var current: JSONValue = .object(root)
        for part in path.split(separator: ".") {
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current
    }

    /// Every dotted name the context defines, for "did you mean" hints.
    var knownNames: [String] {
        var names: [String] = []
        func walk(_ value: JSONValue, _ prefix: String) {
            if case .object(let m) = value {
                for (key, child) in m {
                    let name = prefix.isEmpty ? key : "\(prefix).\(key)"
                    names.append(name)
                    walk(child, name)
                }
            }
        }
        walk(.object(root), "")
        return names
    }

    public func evaluate(_ condition: Condition) -> Bool {
        let value = self.value(at: condition.variable)
        switch condition {
        case .truthy: return value?.isTruthy ?? false
        case .falsy: return !(value?.isTruthy ?? false)
        case .equals(_, let literal): return value?.text == literal
        case .notEquals(_, let literal): return value?.text != literal
        }
    }

    /// Renders `text` (written at `origin`: a YAML scalar or line 1 column 1 of a template
    /// file), or throws every problem found in it. In `.shell` mode every `{{name}}` becomes one
    /// shell word, quoted; only `{{{name}}}` and `{{&name}}` insert a value as shell syntax.
    public func render(_ text: String, origin: SourceLocation, mode: TemplateMode = .text) throws(TemplateError) -> String {
        let issues = check(text, origin: origin)
        if !issues.isEmpty { throw TemplateError(issues: issues) }
        // Nothing to substitute: skip the parser entirely (most arguments are plain strings).
        if !text.contains("{{") { return text }
        var text = text
        if mode == .shell {
            let prepared = TextMemo.shellQuoting.value(for: text) { ShellTemplateQuoting.prepare($0) }
            if !prepared.problems.isEmpty {
                throw TemplateError(issues: prepared.problems.map {
                    TemplateIssue(message: $0.message, location: Self.offset(origin, line: $0.line, column: $0.column))
                })
            }
            text = prepared.text
        }
        // Mustache escapes HTML by default; config files need the text as written and shell
        // text needs every value quoted. The CONTENT_TYPE tag says which. When the first line is
        // blank, the tag goes on a line of its own, which Mustache removes as a standalone tag,
        // so the text is unchanged.
        let firstLine = text.prefix(while: { $0 != "\n" })
        let firstLineBlank = firstLine.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } && text.contains("\n")
        let pragma = "{{%CONTENT_TYPE:\(mode.contentTypeName)}}"
        let prefixed = (firstLineBlank ? pragma + "\n" : pragma) + text
        do {
            let template = try TextMemo.templates.value(for: prefixed) { text in
                Result { try MustacheTemplate(string: text) }.mapError { $0 as any Error }
            }.get()
            return template.render(mustache.object)
        } catch let error as MustacheTemplate.ParserError {
            let line = error.context.lineNumber - (firstLineBlank ? 1 : 0)
            let location = Self.offset(origin, line: max(1, line), column: error.context.columnNumber)
            throw TemplateError(issues: [TemplateIssue(message: "template syntax error: \(error.error)", location: location)])
        } catch {
            throw TemplateError(issues: [TemplateIssue(message: "template syntax error: \(error)", location: origin)])
        }
    }

    /// The problems `render` would throw, without rendering: unknown variables and malformed tags.
    public func check(_ text: String, origin: SourceLocation) -> [TemplateIssue] {
        guard text.contains("{{") else { return [] }
        let scan = TextMemo.scans.value(for: text) { MustacheScanner.scan($0) }
        var issues = scan.issues.map {
            TemplateIssue(message: $0.message, location: Self.offset(origin, line: $0.line, column: $0.column))
        }
        func visit(_ nodes: [MustacheScanner.Node], stack: [JSONValue]) {
            for node in nodes {
                switch node {
                case .variable(let name, let line, let column):
                    if resolve(name, in: stack) == nil {
                        issues.append(missing(name, line, column, origin: origin, stack: stack))
                    }
                case .section(let name, let inverted, let children, let line, let column):
                    guard let value = resolve(name, in: stack) else {
                        issues.append(missing(name, line, column, origin: origin, stack: stack))
                        continue
                    }
                    if inverted {
                        visit(children, stack: stack)
                        continue
                    }
                    switch value {
                    case .array(let elements):
                        // Each element is checked: hosts of a role may differ in their fields.
                        for element in elements { visit(children, stack: stack + [element]) }
                    case .object:
                        visit(children, stack: stack + [value])
                    default:
                        visit(children, stack: stack)
                    }
                }
            }
        }
        visit(scan.nodes, stack: [.object(root)])
        // One report per name and place, even when a section repeats it for every element.
        var seen: Set<TemplateIssue> = []
        return issues.filter { seen.insert($0).inserted }
    }

    private func missing(
        _ name: String, _ line: Int, _ column: Int, origin: SourceLocation, stack: [JSONValue]
    ) -> TemplateIssue {
        var candidates = knownNames  // only computed for a missing name
        for case .object(let m) in stack.dropFirst() { candidates += m.keys }
        let hint = Suggestion.hint(for: name, in: candidates)
        return TemplateIssue(
            message: "template variable '\(name)' does not exist\(hint)",
            location: Self.offset(origin, line: line, column: column))
    }

    /// Mustache's lookup: the first name is searched from the innermost section outwards,
    /// the rest of a dotted name is followed from there.
    func resolve(_ name: String, in stack: [JSONValue]) -> JSONValue? {
        if name == "." { return stack.last }
        let parts = name.split(separator: ".").map(String.init)
        guard let first = parts.first else { return nil }
        for frame in stack.reversed() {
            guard var current = frame[first] else { continue }
            for part in parts.dropFirst() {
                guard let next = current[part] else { return nil }
                current = next
            }
            return current
        }
        return nil
    }

    /// A position inside a template, made absolute: for inline templates (YAML scalars) line
    /// 1 starts at the scalar's column; for template files, origin is 1:1.
    static func offset(_ origin: SourceLocation, line: Int, column: Int) -> SourceLocation {
        if line == 1 { return SourceLocation(file: origin.file, line: origin.line, column: origin.column + column - 1) }
        return SourceLocation(file: origin.file, line: origin.line + line - 1, column: origin.indent + column)
    }
}

/// Finds Mustache tags and their positions, for the variable check above. It understands
/// what playbook templates use: `{{name}}`, `{{{name}}}`, `{{&name}}`, sections `{{#x}}`/`{{^x}}`
/// ... `{{/x}}`, comments `{{! }}`, transforms `{{lowercased(x)}}` and the `{{% }}` pragma.
/// Partials and custom delimiters are refused with a message (templates here have no library
/// of partials to draw from, and a changed delimiter would hide tags from this check).
enum MustacheScanner {
    indirect enum Node: Hashable {
        case variable(name: String, line: Int, column: Int)
        case section(name: String, inverted: Bool, children: [Node], line: Int, column: Int)
    }

    /// The transforms swift-mustache applies (`{{lowercased(name)}}`); any other name renders as nothing.
    static let transforms = [
        "capitalized", "count", "empty", "enumerated", "equalzero", "even", "first", "last", "lowercased",
        "minusone", "odd", "plusone", "reversed", "sorted", "uppercased",
    ]

    struct Problem: Hashable {
        var message: String
        var line: Int
        var column: Int
    }

    static func scan(_ text: String) -> (nodes: [Node], issues: [Problem]) {
        let chars = Array(text)
        var index = 0
        var line = 1
        var column = 1
        var problems: [Problem] = []
        // Stack of open sections: (name, inverted, children so far, line, column).
        var stack: [(name: String, inverted: Bool, nodes: [Node], line: Int, column: Int)] = [("", false, [], 0, 0)]

        func advance(_ count: Int) {
            for _ in 0..<count where index < chars.count {
                if chars[index] == "\n" { line += 1; column = 1 } else { column += 1 }
                index += 1
            }
        }
        func starts(with s: String) -> Bool {
            let s = Array(s)
            guard index + s.count <= chars.count else { return false }
            return Array(chars[index..<index + s.count]) == s
        }
        func baseName(_ raw: String, line: Int = 0, column: Int = 0) -> String {
            // lowercased(name) / first(reversed(list)): the variable is the innermost name.
            var name = raw
            // Each transform must be one Mustache knows: an unknown one renders as nothing.
            var transforms = raw.split(separator: "(", omittingEmptySubsequences: false).dropLast().map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            if transforms.contains(where: \.isEmpty) { transforms = [] }
            for transform in transforms where !MustacheScanner.transforms.contains(transform) {
                let hint = Suggestion.hint(for: transform, in: MustacheScanner.transforms)
                problems.append(Problem(
                    message: "'\(transform)' is not a template transform\(hint); known transforms: \(MustacheScanner.transforms.joined(separator: ", "))",
                    line: line, column: column))
            }
            if let open = name.lastIndex(of: "(") {
                name = String(name[name.index(after: open)...]).replacingOccurrences(of: ")", with: "")
            }
            return name.trimmingCharacters(in: .whitespaces)
        }

        while index < chars.count {
            guard starts(with: "{{") else { advance(1); continue }
            let tagLine = line, tagColumn = column
            let triple = starts(with: "{{{")
            advance(triple ? 3 : 2)
            let close = triple ? "}}}" : "}}"
            var body = ""
            while index < chars.count, !starts(with: close) {
                body.append(chars[index])
                advance(1)
            }
            guard index < chars.count else {
                problems.append(Problem(message: "template tag is not closed (expected '\(close)')", line: tagLine, column: tagColumn))
                break
            }
            advance(close.count)
            let trimmed = body.trimmingCharacters(in: .whitespaces)
            if triple {
                stack[stack.count - 1].nodes.append(.variable(name: baseName(trimmed, line: tagLine, column: tagColumn), line: tagLine, column: tagColumn))
                continue
            }
            guard let sigil = trimmed.first else {
                problems.append(Problem(message: "empty template tag '{{}}'", line: tagLine, column: tagColumn))
                continue
            }
            let rest = trimmed.dropFirst().trimmingCharacters(in: .whitespaces)
            switch sigil {
            case "!", "%":
                continue
            case "&":
                stack[stack.count - 1].nodes.append(.variable(name: baseName(rest, line: tagLine, column: tagColumn), line: tagLine, column: tagColumn))
            case "#", "^":
                stack.append((baseName(rest, line: tagLine, column: tagColumn), sigil == "^", [], tagLine, tagColumn))
            case "/":
                let name = baseName(rest)
                guard stack.count > 1 else {
                    problems.append(Problem(message: "'{{/\(name)}}' closes a section that was never opened", line: tagLine, column: tagColumn))
                    continue
                }
                let open = stack.removeLast()
                if open.name != name {
                    problems.append(Problem(
                        message: "'{{/\(name)}}' closes the section '\(open.name)' opened at \(open.line):\(open.column)",
                        line: tagLine, column: tagColumn))
                }
                stack[stack.count - 1].nodes.append(
                    .section(name: open.name, inverted: open.inverted, children: open.nodes, line: open.line, column: open.column))
            case ">", "<", "$":
                problems.append(Problem(message: "partials and blocks ('{{\(sigil)...}}') are not supported in labctl templates", line: tagLine, column: tagColumn))
            case "=":
                problems.append(Problem(message: "changing the delimiters ('{{=...=}}') is not supported in labctl templates", line: tagLine, column: tagColumn))
            default:
                stack[stack.count - 1].nodes.append(.variable(name: baseName(trimmed, line: tagLine, column: tagColumn), line: tagLine, column: tagColumn))
            }
        }
        while stack.count > 1 {
            let open = stack.removeLast()
            problems.append(Problem(message: "the section '\(open.name)' is never closed (expected '{{/\(open.name)}}')", line: open.line, column: open.column))
        }
        return (stack[0].nodes, problems)
    }
}

/// A context's values as swift-mustache walks them (plain Swift values), converted on first
/// use. Immutable once made; the lock guards only the first conversion.
private final class MustacheRoot: @unchecked Sendable {
    private let lock = NSLock()
    private let root: [String: JSONValue]
    private let converted: [String: Any]
    private var made: [String: Any]?

    init(root: [String: JSONValue], converted: [String: Any]) {
        self.root = root
        self.converted = converted
    }

    var object: Any {
        lock.withLock {
            if let made { return made }
            var object = converted
            for (key, value) in root where object[key] == nil { object[key] = value.mustacheObject }
            made = object
            return object
        }
    }
}

/// Results of pure functions of a template's text, kept for the run: every host renders the
/// same step arguments, so each text is scanned, shell-prepared and parsed once, not once per
/// host (those were most of planning's time at a few hundred hosts). Bounded: a run with more
/// distinct texts than `limit` starts the memo over.
final class TextMemo<Value: Sendable>: Sendable {
    private let entries = Mutex<[String: Value]>([:])
    private let limit: Int

    init(limit: Int = 20_000) { self.limit = limit }

    func value(for text: String, _ make: (String) -> Value) -> Value {
        if let known = entries.withLock({ $0[text] }) { return known }
        let made = make(text)
        entries.withLock { entries in
            if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
            entries[text] = made
        }
        return made
    }
}

extension TextMemo where Value == (nodes: [MustacheScanner.Node], issues: [MustacheScanner.Problem]) {
    static let scans = TextMemo()
}

extension TextMemo where Value == (text: String, problems: [ShellTemplateQuoting.Problem]) {
    static let shellQuoting = TextMemo()
}

extension TextMemo where Value == Result<MustacheTemplate, any Error> {
    static let templates = TextMemo()
}
