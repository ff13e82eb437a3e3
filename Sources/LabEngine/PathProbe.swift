import Foundation

/// What a step needs to know about one path on the host. The probe script gathers these for
/// all its steps at once: one `stat` for every path and one `sha256sum` for every checksum,
/// where a snippet per step cost the host two or three processes per file step (on a 2-core
/// machine with 10 hosts the probe's processes were half of a no-op run's time).
///
/// The facts a step gets are the ones a per-step probe printed: `kind` (file, dir, dangling,
/// other, none), `stat` (owner:group:mode, for files and directories), `target` (what a
/// symbolic link to a file resolves to), and when asked `sha256`, `content.b64` (or
/// `content=large` past `contentLimit`) and `parent` (dir or none).
public struct PathProbe: Sendable, Hashable {
    public var path: String
    public var checksum: Bool
    public var content: Bool
    /// With `content`: more bytes than this report `content=large` instead (diffs only).
    public var contentLimit: Int?
    public var parent: Bool

    public init(_ path: String, checksum: Bool = false, content: Bool = false, contentLimit: Int? = nil, parent: Bool = false) {
        self.path = path
        self.checksum = checksum
        self.content = content
        self.contentLimit = contentLimit
        self.parent = parent
    }
}

/// The shared section of a probe script that answers every step's `PathProbe`, and the
/// reading of its output back into facts.
struct PathProbeSection {
    /// One entry per distinct path, with everything any step wants of it.
    private(set) var paths: [PathProbe] = []
    private var indexOfPath: [String: Int] = [:]

    init(_ probes: [PathProbe]) {
        for probe in probes {
            if let index = indexOfPath[probe.path] {
                paths[index].checksum = paths[index].checksum || probe.checksum
                paths[index].parent = paths[index].parent || probe.parent
                if probe.content {
                    // The largest read wins (no limit is the largest); each step applies its
                    // own limit when its facts are made.
                    let limits = paths[index].content ? [paths[index].contentLimit, probe.contentLimit] : [probe.contentLimit]
                    paths[index].content = true
                    paths[index].contentLimit = limits.contains(nil) ? nil : limits.compactMap { $0 }.max()
                }
            } else {
                indexOfPath[probe.path] = paths.count
                paths.append(probe)
            }
        }
    }

    func index(of path: String) -> Int? { indexOfPath[path] }

    /// POSIX sh. Tests and parameter expansion are builtins; the only processes are one `stat`,
    /// one `sha256sum`, and per path only what it alone needs (`base64` for a content,
    /// `readlink` for a symbolic link). `stat` and `sha256sum` print in argument order, and the
    /// order is printed before them, so no path name needs parsing (names may hold anything).
    /// Runs in the probe's own shell (`set --` collects arguments), with stdin closed: the
    /// probe script itself arrives on that stdin.
    func script(nonce: String) -> String {
        guard !paths.isEmpty else { return "" }
        var lines = ["echo '@@\(nonce) paths'", "{", "o=", "set --"]
        for (index, probe) in paths.enumerated() {
            lines += [
                "p=\(Shell.quote(probe.path))",
                #"if [ -L "$p" ] && [ ! -e "$p" ]; then echo \#(index).kind=dangling"#,
                // A symbolic link (sites-enabled/x -> ../sites-available/x) is followed: the
                // file it points to is the one compared and replaced, and the link stays. Its
                // target travels in base64, as a name may hold a newline.
                #"elif [ -f "$p" ]; then echo \#(index).kind=file; o="$o \#(index)"; set -- "$@" "$p"; if [ -L "$p" ]; then echo "\#(index).target.b64=$(readlink -f "$p" | base64 -w0)"; fi"#,
                #"elif [ -d "$p" ]; then echo \#(index).kind=dir; o="$o \#(index)"; set -- "$@" "$p""#,
                #"elif [ -e "$p" ]; then echo \#(index).kind=other"#,
                "else echo \(index).kind=none; fi",
            ]
            if probe.parent {
                lines.append(#"case "$p" in */*) d="${p%/*}";; *) d=.;; esac; if [ -d "${d:-/}" ]; then echo \#(index).parent=dir; else echo \#(index).parent=none; fi"#)
            }
            if probe.content {
                // One byte past the limit is enough to know the file is over it.
                let read = probe.contentLimit.map { #"head -c \#($0 + 1) < "$p" | base64 -w0"# } ?? #"base64 -w0 < "$p""#
                // An unreadable file gets no content at all (the step then says it could not
                // read it), never an empty one.
                lines.append(#"if [ -f "$p" ] && [ -r "$p" ]; then echo "\#(index).content.b64=$(\#(read))"; fi"#)
            }
        }
        lines += ["echo '@@\(nonce) stat'", #"echo "$o""#, #"if [ -n "$o" ]; then stat -L -c '%U:%G:%a' -- "$@"; fi"#]
        let checksummed = paths.indices.filter { paths[$0].checksum }
        if !checksummed.isEmpty {
            lines += ["o=", "set --"]
            for index in checksummed {
                // Only readable files: one sha256sum cannot read would print a line fewer and
                // cost every path its checksum.
                lines.append(#"p=\#(Shell.quote(paths[index].path)); if [ -f "$p" ] && [ -r "$p" ]; then o="$o \#(index)"; set -- "$@" "$p"; fi"#)
            }
            lines += ["echo '@@\(nonce) sha256'", #"echo "$o""#, #"if [ -n "$o" ]; then sha256sum -- "$@"; fi"#]
        }
        lines += ["echo '@@\(nonce) paths end'", "} </dev/null 2>/dev/null", "set --"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The facts of each path (by index) from the section's output: the lines between the
    /// `paths` marker and the first step's section. Nil when the section did not finish.
    func parse(_ lines: ArraySlice<Substring>, nonce: String) -> [Int: Facts]? {
        var facts: [Int: Facts] = [:]
        // Each tool's part: the order of its arguments (path indexes), then its output lines.
        var tools: [Substring: (order: [Int]?, lines: [Substring])] = [:]
        var tool: Substring?
        var finished = false
        for line in lines {
            if line.hasPrefix("@@\(nonce) ") {
                let name = line.dropFirst(nonce.count + 3)
                if name == "paths end" { finished = true; break }
                tool = name
                tools[name] = (nil, [])
                continue
            }
            if let name = tool {
                if tools[name]!.order == nil {
                    tools[name]!.order = line.split(separator: " ").compactMap { Int($0) }
                } else {
                    tools[name]!.lines.append(line)
                }
                continue
            }
            guard let equals = line.firstIndex(of: "="), let dot = line[..<equals].firstIndex(of: "."),
                let index = Int(line[..<dot])
            else { continue }
            facts[index, default: Facts()].values[String(line[line.index(after: dot)..<equals])] = String(line[line.index(after: equals)...])
        }
        guard finished else { return nil }
        for (index, pathFacts) in facts {
            // readlink ends the name with one newline of its own.
            guard let target = pathFacts.bytes("target") else { continue }
            facts[index]!.values["target.b64"] = nil
            facts[index]!.values["target"] = String(decoding: target.dropLast(), as: UTF8.self)
        }
        // A path that changed between the shell's test and the tool's look makes the tool
        // print one line fewer: then no path gets that fact rather than a wrong one (a plan
        // without them writes again, which is right for a file that just changed).
        if let stat = tools["stat"], let order = stat.order, order.count == stat.lines.count {
            for (index, line) in zip(order, stat.lines) { facts[index, default: Facts()].values["stat"] = String(line) }
        }
        if let sums = tools["sha256"], let order = sums.order, order.count == sums.lines.count {
            for (index, line) in zip(order, sums.lines) {
                // A name with a newline or backslash makes sha256sum start its line with "\".
                facts[index, default: Facts()].values["sha256"] = String(line.drop { $0 == "\\" }.prefix { $0 != " " })
            }
        }
        return facts
    }

    /// The facts one step asked for, with its own content limit applied.
    static func facts(for probe: PathProbe, from pathFacts: Facts) -> Facts {
        var facts = pathFacts
        if !probe.checksum { facts.values["sha256"] = nil }
        if !probe.parent { facts.values["parent"] = nil }
        if !probe.content {
            facts.values["content.b64"] = nil
        } else if let limit = probe.contentLimit, let bytes = facts.bytes("content"), bytes.count > limit {
            facts.values["content.b64"] = nil
            facts.values["content"] = "large"
        }
        return facts
    }
}
