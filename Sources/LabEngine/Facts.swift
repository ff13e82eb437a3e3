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

/// The one command that gathers the facts of many steps: first the paths they ask about, all
/// at once (`PathProbe`), then each step's own probe in its own subshell (one failing probe
/// cannot stop the others), between marker lines carrying a random nonce, so that no output a
/// probe prints can be mistaken for a marker.
public struct ProbeScript: Sendable {
    public let nonce: String
    public let script: String
    public let stepIDs: [Int]
    private let paths: PathProbeSection
    /// Per step with a path probe: what it asked for.
    private let pathProbes: [Int: PathProbe]

    /// One probe for these steps (`id` keys their facts).
    public init(steps: [(id: Int, operation: any StepOperation)], nonce: String = ProbeScript.makeNonce()) {
        self.init(requests: steps.map { ($0.id, $0.operation.probe, $0.operation.pathProbe) }, nonce: nonce)
    }

    /// Snippets alone, for probes written by hand.
    public init(probes: [(id: Int, snippet: String)], nonce: String = ProbeScript.makeNonce()) {
        self.init(requests: probes.map { ($0.id, $0.snippet, nil) }, nonce: nonce)
    }

    init(requests: [(id: Int, snippet: String, path: PathProbe?)], nonce: String) {
        self.nonce = nonce
        self.stepIDs = requests.map(\.id)
        var pathProbes: [Int: PathProbe] = [:]
        for request in requests { pathProbes[request.id] = request.path }
        self.pathProbes = pathProbes
        self.paths = PathProbeSection(requests.compactMap(\.path))
        var script = ProbeScript.prelude + paths.script(nonce: nonce)
        for (id, snippet, _) in requests {
            script += "echo '@@\(nonce) begin \(id)'\n"
            // A step with nothing but a path probe needs no subshell of its own.
            script += snippet.isEmpty ? "echo '@@\(nonce) end \(id) 0'\n" : "(\n\(snippet)\n) </dev/null 2>/dev/null\necho \"@@\(nonce) end \(id) $?\"\n"
        }
        self.script = script
    }

    public static func makeNonce() -> String {
        (0..<4).map { _ in String(UInt32.random(in: .min ... .max), radix: 16) }.joined()
    }

    /// What every probe shares: LC_ALL=C keeps tools' output stable across host locales.
    /// Probes avoid helper processes (`tr`, `cut`, `dirname`; shell parameter expansion does
    /// their work): the probe of a whole playbook should cost the host little.
    static let prelude = """
        LC_ALL=C; export LC_ALL

        """

    /// Splits the probe output into each step's facts. A step whose section is missing (the
    /// shell died) gets no entry, nor does a step with a path probe when the paths section did
    /// not finish.
    public func parse(_ output: String) -> [Int: Facts] {
        var result: [Int: Facts] = [:]
        var current: Int?
        var body = ""
        let begin = "@@\(nonce) begin "
        let end = "@@\(nonce) end "
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)[...]
        var pathFacts: [Int: Facts]?
        if !paths.paths.isEmpty, let start = lines.firstIndex(of: "@@\(nonce) paths") {
            let stop = lines[start...].firstIndex { $0.hasPrefix(begin) } ?? lines.endIndex
            pathFacts = paths.parse(lines[(start + 1)..<stop], nonce: nonce)
            lines = lines[stop...]
        }
        for line in lines {
            if line.hasPrefix(begin) {
                current = Int(line.dropFirst(begin.count))
                body = ""
            } else if line.hasPrefix(end) {
                let parts = line.dropFirst(end.count).split(separator: " ")
                if let id = current, parts.first.flatMap({ Int($0) }) == id {
                    var facts = Facts.parse(body[...])
                    if let probe = pathProbes[id] {
                        guard let index = paths.index(of: probe.path), let found = pathFacts?[index] else {
                            current = nil
                            continue
                        }
                        facts.values.merge(PathProbeSection.facts(for: probe, from: found).values) { own, _ in own }
                    }
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
