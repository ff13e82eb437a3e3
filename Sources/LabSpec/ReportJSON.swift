import Foundation

/// The one way labctl's reports become JSON (`--json` of every verb): keys sorted, indented,
/// dates as ISO 8601. Every document carries a top-level `schemaVersion`; a change that breaks
/// a reader raises it.
public enum ReportJSON {
    /// The layout version of every document labctl writes today.
    public static let schemaVersion = 1

    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
