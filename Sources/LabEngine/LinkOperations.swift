import Foundation
import LabSpec

/// The `link` step: a symbolic link at `path` that points to `target`, written as given (a
/// relative target resolves from the link's folder, as `ln -s` makes it).
public struct LinkOperation: StepOperation {
    public var path: String
    public var target: String?
    public var force: Bool
    public var state: PresenceState

    public init(path: String, target: String?, force: Bool = false, state: PresenceState = .present) {
        self.path = path
        self.target = target
        self.force = force
        self.state = state
    }

    /// The path itself, not what it points to (the shared path probe follows links): what it
    /// is, the link's own text, and whether the wanted target exists seen from its folder.
    public var probe: String {
        var lines = [
            "p=\(Shell.quote(path))",
            #"if [ -L "$p" ]; then echo kind=link; echo "link.b64=$(readlink -- "$p" | base64 -w0)"; elif [ -d "$p" ]; then echo kind=dir; elif [ -e "$p" ]; then echo kind=file; else echo kind=none; fi"#,
            #"case "$p" in */*) d="${p%/*}";; *) d=.;; esac; if [ -d "${d:-/}" ]; then echo parent=dir; else echo parent=none; fi"#,
        ]
        if let target {
            lines.append("t=\(Shell.quote(target))")
            lines.append(#"case "$t" in /*) ;; *) t="${d:-/}/$t";; esac; if [ -e "$t" ]; then echo target=exists; else echo target=missing; fi"#)
        }
        return lines.joined(separator: "\n")
    }

    /// What the link step's own probe found, typed.
    struct Found: Hashable {
        enum Kind: String { case link, dir, file, none }
        var kind: Kind
        /// The link's own text, as `readlink` prints it without its newline.
        var linkText: String?
        var parentExists: Bool
        /// Whether the wanted target exists, seen from the link's folder; nil when not asked.
        var targetExists: Bool?

        init(_ facts: Facts) {
            kind = facts["kind"].flatMap(Kind.init(rawValue:)) ?? .none
            linkText = facts.text("link").map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
            parentExists = facts["parent"] != "none"
            targetExists = facts["target"].map { $0 == "exists" }
        }
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        let found = Found(facts)
        let p = Shell.quote(path)
        if state == .absent {
            switch found.kind {
            case .none: return .unchanged
            case .link: return StepPlan(commands: ["rm -f -- \(p)"], summary: ["remove the link \(path)"])
            case .dir, .file: throw StepFailure("\(path) is not a symbolic link; refusing to remove it as one")
            }
        }
        guard let target else { throw StepFailure("a link step needs 'target'") }
        if found.kind == .link, found.linkText == target { return .unchanged }
        if !found.parentExists {
            throw StepFailure("the folder of \(path) does not exist; make it first (a directory step)")
        }
        if found.targetExists == false, !force {
            throw StepFailure("\(target) does not exist (seen from \(path)'s folder); force: true links to it anyway")
        }
        // A new link made beside the old path and renamed over it: the path is never missing.
        let staged = Shell.quote(path + ".labctl-link")
        let make = ["rm -f -- \(staged)", "ln -s -- \(Shell.quote(target)) \(staged)", "mv -fT -- \(staged) \(p)"]
        switch found.kind {
        case .none:
            return StepPlan(commands: make, summary: ["link \(path) -> \(target)"])
        case .link:
            return StepPlan(commands: make, summary: ["link \(path) -> \(target) (was -> \(found.linkText ?? "?"))"])
        case .file:
            guard force else { throw StepFailure("\(path) exists and is not a symbolic link; force: true replaces it with the link") }
            return StepPlan(commands: make, summary: ["replace the file \(path) with a link -> \(target)"])
        case .dir:
            throw StepFailure("\(path) is a directory; a link step never replaces one (remove it first, or choose another path)")
        }
    }
}

/// The `attributes` step: owner, group and mode of a path that exists (a link is followed, as
/// chown and chmod do), its content left alone.
public struct AttributesOperation: StepOperation {
    public var path: String
    public var owner: String?
    public var group: String?
    public var mode: Int?

    public init(path: String, owner: String? = nil, group: String? = nil, mode: Int? = nil) {
        self.path = path
        self.owner = owner
        self.group = group
        self.mode = mode
    }

    public var probe: String { "" }
    public var pathProbe: PathProbe? { PathProbe(path) }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        let found = PathFacts(facts)
        switch found.kind {
        case .file, .directory:
            var summary: [String] = []
            let commands = FileCommands.attributeCommands(
                target: Shell.quote(path), current: found.attributes, owner: owner, group: group, mode: mode, summary: &summary)
            return commands.isEmpty ? .unchanged : StepPlan(commands: commands, summary: summary)
        case .dangling:
            throw StepFailure("\(path) is a symbolic link to nothing; attributes needs a file or directory that exists")
        case .missing:
            throw StepFailure("\(path) does not exist; attributes sets the owner, group and mode of an existing file (a file step makes one)")
        case .other:
            throw StepFailure("\(path) is neither a file nor a directory")
        }
    }
}
