import Foundation

/// Finds keys given twice in one JSON object. Foundation's parsers accept them silently and
/// disagree on which one wins (JSONDecoder keeps the first, JSONSerialization the last), so a
/// second "port" in a host would quietly be ignored or quietly win. This scanner runs on data the
/// decoder has already accepted, so it only has to track nesting, keys and lines, not validate.
enum InventoryDuplicateKeys {
    private struct Frame {
        var path: String
        var isObject: Bool
        var keyLines: [String: Int] = [:]
        var expectingKey = true
        var currentKey: String?
        var index = 0

        func childPath() -> String {
            if isObject {
                let key = currentKey ?? "?"
                return path.isEmpty ? key : "\(path).\(key)"
            }
            return "\(path)[\(index)]"
        }
    }

    static func problems(in data: Data) -> [InventoryProblem] {
        let bytes = [UInt8](data)
        var problems: [InventoryProblem] = []
        var stack: [Frame] = []
        var line = 1
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let path = stack.last?.childPath() ?? ""
                stack.append(Frame(path: path, isObject: byte == UInt8(ascii: "{")))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if stack.last?.isObject == true {
                    stack[stack.count - 1].expectingKey = true
                } else if !stack.isEmpty {
                    stack[stack.count - 1].index += 1
                }
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    if bytes[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
                guard var frame = stack.popLast() else { break }
                if frame.isObject, frame.expectingKey {
                    let key = decodeString(bytes[start...min(i, bytes.count - 1)])
                    let keyPath = frame.path.isEmpty ? key : "\(frame.path).\(key)"
                    if let first = frame.keyLines[key] {
                        problems.append(InventoryProblem(
                            path: keyPath,
                            message: "given twice in one object (\(first == line ? "line \(line)" : "lines \(first) and \(line)")); keep one"))
                    } else {
                        frame.keyLines[key] = line
                    }
                    frame.currentKey = key
                    frame.expectingKey = false
                }
                stack.append(frame)
            default:
                break
            }
            i += 1
        }
        return problems
    }

    /// A key's text with its escapes undone, so "\u0070ort" and "port" are one key.
    private static func decodeString(_ literal: ArraySlice<UInt8>) -> String {
        (try? JSONDecoder().decode(String.self, from: Data(literal)))
            ?? String(decoding: literal.dropFirst().dropLast(), as: UTF8.self)
    }
}
