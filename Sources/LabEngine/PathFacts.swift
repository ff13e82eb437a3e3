import Foundation

/// What the shared path probe found at one path, read once from its `key=value` facts into
/// typed values: plans switch over `kind` and compare owner, group and mode, never strings.
public struct PathFacts: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// A regular file (or a symbolic link to one: `resolved` names the file).
        case file
        case directory = "dir"
        /// A symbolic link whose target does not exist.
        case dangling
        /// Something else: a device, a socket, a fifo.
        case other
        case missing = "none"
    }

    public struct Attributes: Sendable, Hashable {
        public var owner: String
        public var group: String
        public var mode: Int
    }

    public enum Content: Sendable, Hashable {
        case bytes([UInt8])
        /// Larger than the step's limit: not read.
        case tooLarge
        /// Not asked for, or not readable.
        case unread
    }

    public var kind: Kind
    /// Of a file or directory; nil when `stat` did not answer (the path changed meanwhile).
    public var attributes: Attributes?
    /// Lowercase hex, when asked for and readable.
    public var sha256: String?
    public var content: Content
    /// Whether the folder holding the path exists; nil when not asked.
    public var parentExists: Bool?
    /// For a symbolic link to a file: the file it resolves to (the one a write replaces).
    public var resolved: String?

    /// The path a write goes to: the file a link resolves to, else the path itself.
    public func writePath(for path: String) -> String { resolved ?? path }

    /// A file's content as text (an empty string when it was not read).
    public var text: String {
        if case .bytes(let bytes) = content { return String(decoding: bytes, as: UTF8.self) }
        return ""
    }

    /// Reads the path probe's facts (`PathProbe` documents the keys). A missing or unknown
    /// `kind` is a path that does not exist, as a probe that printed nothing means.
    public init(_ facts: Facts) {
        kind = facts["kind"].flatMap(Kind.init(rawValue:)) ?? .missing
        attributes = facts["stat"].flatMap(PathFacts.attributes(parsing:))
        sha256 = facts["sha256"]
        if let bytes = facts.bytes("content") {
            content = .bytes(bytes)
        } else {
            content = facts["content"] == "large" ? .tooLarge : .unread
        }
        parentExists = facts["parent"].map { $0 == "dir" }
        resolved = facts["target"]
    }

    /// `owner:group:mode` as `stat -c '%U:%G:%a'` prints it (names hold no colon: they are
    /// checked user and group names, and a host's own names come from its passwd).
    static func attributes(parsing text: String) -> Attributes? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let mode = Int(parts[2], radix: 8) else { return nil }
        return Attributes(owner: parts[0], group: parts[1], mode: mode)
    }
}
