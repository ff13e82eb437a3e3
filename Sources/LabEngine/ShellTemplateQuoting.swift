import Foundation

/// Prepares a shell-text template so that each `{{name}}` can be written as one quoted word
/// wherever it stands.
///
/// A quoted value is only one word where the shell is outside quotes. Inside the author's own
/// quotes it would end them (`'{{x}}'` with `a;b` is `''a;b''`: the `;` separates commands), so
/// such a tag is moved outside them: `'ab{{x}}cd'` becomes `'ab'{{x}}'cd'` and `"ab{{x}}"`
/// becomes `"ab"{{x}}""`, the same single word. Where no quoting can hold a value — a comment
/// (a line break in the value would end it), a here-document (its body is expanded whatever
/// quotes it holds, and a line of the value could end it), `${...}` or bash's `$'...'` — the tag
/// is refused with its position. A section must end in the quoting it began in, or repeating
/// it would shift every quote after it.
///
/// Written by hand: no library models POSIX sh quoting for template positions. It tracks what
/// changes the meaning of a quote: `\`, `'...'`, `"..."`, `$( )` and backquotes (a new
/// command inside, quotes start afresh), `${ }`, comments and here-documents.
enum ShellTemplateQuoting {
    struct Problem: Hashable {
        var message: String
        var line: Int
        var column: Int
    }

    enum Context: Hashable {
        case outside, single, double, comment, heredoc, parameter, ansi
    }

    static func prepare(_ template: String) -> (text: String, problems: [Problem]) {
        let chars = Array(template)
        var out = ""
        var problems: [Problem] = []
        var index = 0
        var line = 1
        var column = 1
        // Each frame: the context, and for `$(`/`${` frames the open parentheses/braces.
        var stack: [(context: Context, depth: Int, closer: Character?)] = [(.outside, 0, nil)]
        var sections: [(name: String, state: [Context], line: Int, column: Int)] = []
        // Here-documents announced on the current line, and the one whose body is being read.
        var heredocQueue: [(delimiter: String, stripTabs: Bool)] = []
        var heredocBody: (delimiter: String, stripTabs: Bool)?
        var lineStart = true

        func peek(_ offset: Int = 0) -> Character? { index + offset < chars.count ? chars[index + offset] : nil }
        func starts(_ s: String) -> Bool {
            let s = Array(s)
            return index + s.count <= chars.count && Array(chars[index..<index + s.count]) == s
        }
        func emit(_ count: Int) {
            for _ in 0..<count where index < chars.count {
                let c = chars[index]
                out.append(c)
                if c == "\n" { line += 1; column = 1; lineStart = true } else { column += 1; lineStart = false }
                index += 1
            }
        }
        var context: Context { stack[stack.count - 1].context }

        while index < chars.count {
            // Template tags are not shell text: look at them first.
            if starts("{{") {
                let tagLine = line, tagColumn = column
                let triple = starts("{{{")
                let close = triple ? "}}}" : "}}"
                var end = index + (triple ? 3 : 2)
                while end < chars.count, !(Array(chars[end..<min(chars.count, end + close.count)]) == Array(close)) { end += 1 }
                let body = String(chars[(index + (triple ? 3 : 2))..<min(end, chars.count)]).trimmingCharacters(in: .whitespaces)
                let tag = String(chars[index..<min(chars.count, end + close.count)])
                let sigil = body.first
                let isEscapedVariable = !triple && sigil.map { !"!%&#^/>=<$".contains($0) } ?? false
                if isEscapedVariable {
                    switch context {
                    case .outside: out += tag
                    case .single: out += "'" + tag + "'"
                    case .double: out += "\"" + tag + "\""
                    case .comment, .heredoc, .parameter, .ansi:
                        let place = [Context.comment: "a shell comment", .heredoc: "a here-document",
                                     .parameter: "a ${...} expansion", .ansi: "a $'...' string"][context]!
                        problems.append(Problem(
                            message: "{{\(body)}} stands in \(place), where labctl cannot quote it as one word; move it out (a variable set before, or an argument)",
                            line: tagLine, column: tagColumn))
                        out += tag
                    }
                } else {
                    out += tag
                    if sigil == "#" || sigil == "^" {
                        sections.append((body, stack.map(\.context), tagLine, tagColumn))
                    } else if sigil == "/", let open = sections.popLast(), open.state != stack.map(\.context) {
                        problems.append(Problem(
                            message: "the section {{\(open.name.dropFirst())}} opened at \(open.line):\(open.column) ends inside other shell quotes than it began in; repeating it would shift the quoting of everything after it",
                            line: tagLine, column: tagColumn))
                    }
                }
                for c in tag { if c == "\n" { line += 1; column = 1 } else { column += 1 } }
                index = min(chars.count, end + close.count)
                lineStart = false
                continue
            }
            let c = chars[index]
            switch context {
            case .heredoc:
                if lineStart, let body = heredocBody {
                    var rest = index
                    if body.stripTabs { while rest < chars.count, chars[rest] == "\t" { rest += 1 } }
                    var word = ""
                    while rest < chars.count, chars[rest] != "\n" { word.append(chars[rest]); rest += 1 }
                    if word == body.delimiter {
                        emit(rest - index)
                        stack.removeLast()
                        heredocBody = nil
                        if !heredocQueue.isEmpty {
                            heredocBody = heredocQueue.removeFirst()
                            stack.append((.heredoc, 0, nil))
                        }
                        continue
                    }
                }
                emit(1)
            case .comment:
                if c == "\n" { stack.removeLast(); continue }
                emit(1)
            case .single:
                if c == "'" { stack.removeLast() }
                emit(1)
            case .ansi:
                if c == "\\" { emit(2); continue }
                if c == "'" { stack.removeLast() }
                emit(1)
            case .double:
                if c == "\\" { emit(2); continue }
                if c == "\"" { stack.removeLast(); emit(1); continue }
                if starts("$(") { stack.append((.outside, 1, ")")); emit(2); continue }
                if starts("${") { stack.append((.parameter, 1, "}")); emit(2); continue }
                if c == "`" { stack.append((.outside, 0, "`")); emit(1); continue }
                emit(1)
            case .parameter:
                if c == "{" { stack[stack.count - 1].depth += 1 }
                if c == "}" {
                    stack[stack.count - 1].depth -= 1
                    if stack[stack.count - 1].depth == 0 { stack.removeLast() }
                }
                emit(1)
            case .outside:
                if c == "\\" { emit(2); continue }
                if c == "'" { stack.append((.single, 0, nil)); emit(1); continue }
                if starts("$'") { stack.append((.ansi, 0, nil)); emit(2); continue }
                if c == "\"" { stack.append((.double, 0, nil)); emit(1); continue }
                if starts("$(") { stack.append((.outside, 1, ")")); emit(2); continue }
                if starts("${") { stack.append((.parameter, 1, "}")); emit(2); continue }
                let frame = stack[stack.count - 1]
                if c == "`" {
                    if frame.closer == "`" { stack.removeLast() } else { stack.append((.outside, 0, "`")) }
                    emit(1)
                    continue
                }
                if frame.closer == ")" {
                    if c == "(" { stack[stack.count - 1].depth += 1 }
                    if c == ")" {
                        stack[stack.count - 1].depth -= 1
                        if stack[stack.count - 1].depth == 0 { stack.removeLast(); emit(1); continue }
                    }
                }
                if c == "#", index == 0 || " \t\n;&|()".contains(chars[index - 1]) {
                    stack.append((.comment, 0, nil))
                    emit(1)
                    continue
                }
                if starts("<<"), !starts("<<<") {
                    // The here-document's word: its body starts on the next line.
                    emit(2)
                    var stripTabs = false
                    if peek() == "-" { stripTabs = true; emit(1) }
                    while let p = peek(), p == " " || p == "\t" { emit(1) }
                    var word = ""
                    while let p = peek(), !" \t\n;&|<>()".contains(p) {
                        if p != "'" && p != "\"" && p != "\\" { word.append(p) }
                        emit(1)
                    }
                    if !word.isEmpty { heredocQueue.append((word, stripTabs)) }
                    continue
                }
                if c == "\n", !heredocQueue.isEmpty {
                    emit(1)
                    heredocBody = heredocQueue.removeFirst()
                    stack.append((.heredoc, 0, nil))
                    continue
                }
                emit(1)
            }
        }
        return (out, problems)
    }
}
