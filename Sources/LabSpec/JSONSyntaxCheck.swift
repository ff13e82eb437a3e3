import Foundation

/// A strict JSON (RFC 8259) syntax check run before the inventory is decoded, for three reasons:
/// Foundation's parser on Linux accepts what JSON does not (a trailing comma, comments in some
/// versions) or refuses it with no position ("invalid value"); it cannot say where a file stops
/// being UTF-8; and it recurses, so a file nested 100,000 deep would overflow the stack. This
/// check is a loop with an explicit stack: it never recurses, stops at the first problem, and
/// says what is wrong at which line and column, and what to do.
enum JSONSyntaxCheck {
    /// Deeper than this is refused before any recursive parser sees it. An inventory is at most
    /// five levels deep (hosts[0].app.env...), so this is generous.
    static let maximumDepth = 64

    struct Problem: Error, Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    static func check(_ data: Data) -> Problem? {
        let bytes = [UInt8](data)
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }  // a UTF-8 byte order mark (Windows editors)
        if let bad = firstInvalidUTF8(bytes, from: start) {
            let (line, column) = position(of: bad, in: bytes, from: start)
            return Problem(line: line, column: column, message: String(
                format: "the file is not UTF-8 text (byte 0x%02X); save it as UTF-8", bytes[bad]))
        }
        var scanner = Scanner(bytes: bytes, index: start)
        return scanner.run().map { failure in
            let (line, column) = position(of: failure.offset, in: bytes, from: start)
            return Problem(line: line, column: column, message: failure.message)
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    static func position(of offset: Int, in bytes: [UInt8], from start: Int) -> (Int, Int) {
        let end = min(max(offset, start), bytes.count)
        var line = 1
        var lineStart = start
        for index in start..<end where bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        // Characters, not bytes: count the bytes that do not continue a UTF-8 sequence.
        let column = bytes[lineStart..<end].reduce(1) { ($1 & 0xC0) == 0x80 ? $0 : $0 + 1 }
        return (line, column)
    }

    static func firstInvalidUTF8(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte < 0x80 { index += 1; continue }
            let length: Int
            let minimum: UInt32
            switch byte {
            case 0xC2...0xDF: length = 2; minimum = 0x80
            case 0xE0...0xEF: length = 3; minimum = 0x800
            case 0xF0...0xF4: length = 4; minimum = 0x10000
            default: return index
            }
            guard index + length <= bytes.count else { return index }
            var scalar = UInt32(byte) & (0xFF >> (length + 1))
            for next in bytes[(index + 1)..<(index + length)] {
                guard next & 0xC0 == 0x80 else { return index }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return index }
            index += length
        }
        return nil
    }

    private struct Failure {
        var offset: Int
        var message: String
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index: Int

        enum Container { case object, array }
        /// What the scanner expects next inside the innermost container.
        enum Expect { case value, key, colon, commaOrEnd }

        init(bytes: [UInt8], index: Int) {
            self.bytes = bytes
            self.index = index
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private func describe(_ byte: UInt8?) -> String {
            guard let byte else { return "the end of the file" }
            switch byte {
            case 0x20...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
            default: return String(format: "the byte 0x%02X", byte)
            }
        }

        /// Skips white space; a comment is a problem of its own (JSON has none).
        private mutating func skipSpace() -> Failure? {
            while let byte = current {
                switch byte {
                case 0x20, 0x09, 0x0A, 0x0D:
                    index += 1
                case UInt8(ascii: "/") where index + 1 < bytes.count && (bytes[index + 1] == UInt8(ascii: "/") || bytes[index + 1] == UInt8(ascii: "*")):
                    return Failure(offset: index, message: "a comment; JSON has no comments (neither // nor /* */): remove it, or move the note into a \"description\" value")
                case UInt8(ascii: "#"):
                    return Failure(offset: index, message: "a comment ('#'); JSON has no comments: remove it")
                default:
                    return nil
                }
            }
            return nil
        }

        mutating func run() -> Failure? {
            var stack: [Container] = []
            var expect = Expect.value
            /// Where the last comma was, to name a trailing one.
            var lastComma: Int?
            while true {
                if let failure = skipSpace() { return failure }
                guard let byte = current else {
                    if stack.isEmpty && expect == .commaOrEnd { return nil }
                    let what = stack.last == .object ? "an object ('{') is not closed with '}'" : stack.last == .array ? "a list ('[') is not closed with ']'" : "the file ends before a value"
                    return Failure(offset: index, message: "unexpected end of file: \(what)")
                }
                if stack.isEmpty && expect == .commaOrEnd {
                    return Failure(offset: index, message: "unexpected \(describe(byte)) after the end of the JSON value; the file must hold one object")
                }
                switch expect {
                case .value, .key:
                    if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                        let closesEmpty = lastComma == nil && ((byte == UInt8(ascii: "]") && stack.last == .array && expect == .value)
                            || (byte == UInt8(ascii: "}") && stack.last == .object && expect == .key))
                        if closesEmpty {
                            stack.removeLast()
                            expect = .commaOrEnd
                            index += 1
                            continue
                        }
                        if let comma = lastComma {
                            return Failure(offset: comma, message: "a trailing comma before '\(Character(Unicode.Scalar(byte)))'; JSON allows no comma after the last item: remove it")
                        }
                    }
                    if expect == .key {
                        guard byte == UInt8(ascii: "\"") else {
                            return Failure(offset: index, message: "expected a key in double quotes, found \(describe(byte))")
                        }
                        if let failure = string() { return failure }
                        expect = .colon
                        lastComma = nil
                        continue
                    }
                    lastComma = nil
                    switch byte {
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        if stack.count >= JSONSyntaxCheck.maximumDepth {
                            return Failure(offset: index, message: "nested more than \(JSONSyntaxCheck.maximumDepth) levels deep; an inventory is a few levels deep: is this the right file?")
                        }
                        stack.append(byte == UInt8(ascii: "{") ? .object : .array)
                        expect = byte == UInt8(ascii: "{") ? .key : .value
                        index += 1
                    case UInt8(ascii: "\""):
                        if let failure = string() { return failure }
                        expect = .commaOrEnd
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        if let failure = number() { return failure }
                        expect = .commaOrEnd
                    case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                        let word = byte == UInt8(ascii: "t") ? "true" : byte == UInt8(ascii: "f") ? "false" : "null"
                        guard bytes[index...].starts(with: word.utf8) else {
                            return Failure(offset: index, message: "expected a value, found a word; strings are written in double quotes (\"...\")")
                        }
                        index += word.utf8.count
                        expect = .commaOrEnd
                    case UInt8(ascii: "'"):
                        return Failure(offset: index, message: "a string in single quotes; JSON strings take double quotes (\"...\")")
                    default:
                        if byte.isLetter {
                            return Failure(offset: index, message: "expected a value, found a word; strings are written in double quotes (\"...\"), and NaN and Infinity are not JSON numbers")
                        }
                        return Failure(offset: index, message: "expected a value, found \(describe(byte))")
                    }
                case .colon:
                    guard byte == UInt8(ascii: ":") else {
                        return Failure(offset: index, message: "expected ':' after the key, found \(describe(byte))")
                    }
                    index += 1
                    expect = .value
                case .commaOrEnd:
                    let container = stack.last!
                    if byte == UInt8(ascii: ",") {
                        lastComma = index
                        index += 1
                        expect = container == .object ? .key : .value
                    } else if (byte == UInt8(ascii: "}") && container == .object) || (byte == UInt8(ascii: "]") && container == .array) {
                        stack.removeLast()
                        index += 1
                    } else {
                        let closer = container == .object ? "'}'" : "']'"
                        let hint = byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") ? " (a missing comma before it?)" : ""
                        return Failure(offset: index, message: "expected ',' or \(closer), found \(describe(byte))\(hint)")
                    }
                }
            }
        }

        /// A string starting at the quote under `index`; leaves `index` after the closing quote.
        private mutating func string() -> Failure? {
            let opening = index
            index += 1
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return nil
                case UInt8(ascii: "\\"):
                    guard index + 1 < bytes.count else {
                        index += 1
                        continue
                    }
                    let escape = bytes[index + 1]
                    if escape == UInt8(ascii: "u") {
                        let hex = bytes[min(index + 2, bytes.count)..<min(index + 6, bytes.count)]
                        guard hex.count == 4, hex.allSatisfy({ $0.isHexDigit }) else {
                            return Failure(offset: index, message: "a \\u escape needs four hex digits (\\u00e9)")
                        }
                        index += 6
                    } else if "\"\\/bfnrt".utf8.contains(escape) {
                        index += 2
                    } else {
                        return Failure(offset: index, message: "the escape \\\(Character(Unicode.Scalar(escape))) is not JSON; write \\\\ for a backslash (a Windows path: C:\\\\Users or C:/Users)")
                    }
                case 0x0A:
                    return Failure(offset: opening, message: "a string that is not closed on its line; add the closing '\"' (a line break inside a string is written \\n)")
                case 0x00..<0x20:
                    return Failure(offset: index, message: "a control character inside a string; write it as an escape (\\t, \\n)")
                default:
                    index += 1
                }
            }
            return Failure(offset: opening, message: "a string that is never closed; add the closing '\"'")
        }

        private mutating func number() -> Failure? {
            let start = index
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, first.isDigit else {
                return Failure(offset: start, message: "a '-' not followed by a number")
            }
            index += 1
            if first == UInt8(ascii: "0"), let next = current, next.isDigit {
                return Failure(offset: start, message: "a number with a leading zero; JSON numbers do not start with 0 (write \"0644\" modes as strings)")
            }
            while let byte = current, byte.isDigit { index += 1 }
            if current == UInt8(ascii: ".") {
                index += 1
                guard let byte = current, byte.isDigit else { return Failure(offset: start, message: "a number with no digits after its '.'") }
                while let byte = current, byte.isDigit { index += 1 }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard let byte = current, byte.isDigit else { return Failure(offset: start, message: "a number with no digits in its exponent") }
                while let byte = current, byte.isDigit { index += 1 }
            }
            return nil
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    fileprivate var isHexDigit: Bool {
        isDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
    fileprivate var isLetter: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
    }
}
