import Foundation

/// What a step's probe printed about a host: `key=value` lines. Values that can hold
/// anything (file contents, error output) travel base64-encoded, under keys ending in `.b64`.
public struct Facts: Sendable, Hashable {
    public var values: [String: String]

    public init(_ values: [String: String] = [:]) {
        self.values = values
    }

    public subscript(key: String) -> String? { values[key] }

    /// A base64 fact decoded; nil when absent.
    public func bytes(_ key: String) -> [UInt8]? {
        guard let encoded = values[key + ".b64"] else { return nil }
        return Data(base64Encoded: encoded, options: .ignoreUnknownCharacters).map { Array($0) }
    }

    public func text(_ key: String) -> String? {
        bytes(key).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Parses `key=value` lines; later lines win.
    public static func parse(_ text: Substring) -> Facts {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return Facts(values)
    }
}

/// The one command that gathers the facts of many steps: each step's probe runs in its own
/// subshell (one failing probe cannot stop the others) between marker lines carrying a
/// random nonce, so that no output a probe prints can be mistaken for a marker.
public struct ProbeScript: Sendable {
    public let nonce: String
    public let script: String
    public let stepIDs: [Int]

    public init(probes: [(id: Int, snippet: String)], nonce: String = ProbeScript.makeNonce()) {
        self.nonce = nonce
        self.stepIDs = probes.map(\.id)
        var script = ProbeScript.prelude
        for (id, snippet) in probes {
            script += "echo '@@\(nonce) begin \(id)'\n(\n\(snippet)\n) </dev/null 2>/dev/null\n"
            script += "echo \"@@\(nonce) end \(id) $?\"\n"
        }
        self.script = script
    }

    public static func makeNonce() -> String {
        (0..<4).map { _ in String(UInt32.random(in: .min ... .max), radix: 16) }.joined()
    }

    /// Helpers the probes share. `b64` prints a file base64-encoded on one line; `sum` its
    /// sha256. LC_ALL=C keeps tools' output stable across host locales. Each spares a process
    /// (no `tr`, no `cut`): the probe of a whole playbook should cost the host little.
    static let prelude = """
        LC_ALL=C; export LC_ALL
        b64() { base64 -w0 < "$1"; }
        sum() { set -- $(sha256sum < "$1"); printf '%s' "$1"; }

        """

    /// Splits the probe output into each step's facts. A step whose section is missing (the
    /// shell died) gets no entry.
    public func parse(_ output: String) -> [Int: Facts] {
        var result: [Int: Facts] = [:]
        var current: Int?
        var body = ""
        let begin = "@@\(nonce) begin "
        let end = "@@\(nonce) end "
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(begin) {
                current = Int(line.dropFirst(begin.count))
                body = ""
            } else if line.hasPrefix(end) {
                let parts = line.dropFirst(end.count).split(separator: " ")
                if let id = current, parts.first.flatMap({ Int($0) }) == id {
                    var facts = Facts.parse(body[...])
                    facts.values["probe.status"] = parts.count > 1 ? String(parts[1]) : ""
                    result[id] = facts
                }
                current = nil
            } else if current != nil {
                body += line + "\n"
            }
        }
        return result
    }
}
