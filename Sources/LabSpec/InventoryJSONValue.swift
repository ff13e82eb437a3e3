import Foundation

/// Any JSON value, kept as parsed so that the inventory can be checked field by field.
///
/// Why not decode `Inventory` with `Codable` directly: a synthesized `Decodable` stops at the
/// first error and cannot see unknown keys, while a user fixing an inventory wants every problem
/// at once, each with its path, and typos in field names must not pass silently. So the file is
/// decoded (by `JSONDecoder`) into this generic value and then walked with a path.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The value as it would appear in a problem report: scalars as JSON text (strings in
    /// double quotes), containers by kind, so a message never quotes a whole sub-tree.
    public var shortDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        case .string(let value):
            let shown = value.count > 60 ? String(value.prefix(57)) + "..." : value
            let escaped = shown.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\"\(escaped)\""
        case .array(let value): return value.isEmpty ? "an empty list" : "a list"
        case .object(let value): return value.isEmpty ? "an empty object" : "an object"
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
