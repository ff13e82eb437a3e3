import Foundation

/// Where something was written: a file and a 1-based line and column (YAML marks, or a
/// template's own position).
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// For text that starts here and goes on over several lines (a YAML block scalar): how
    /// far every line is indented in the file, so positions inside the text can be mapped back.
    public var indent: Int

    public init(file: String, line: Int, column: Int, indent: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
        self.indent = indent
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A value together with where it was written, so that later checks (template variables,
/// targets) can point at the exact spot in the playbook.
public struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

/// A parsed, schema-checked playbook. String arguments are still templates: they are
/// rendered per host by the engine.
public struct Playbook: Sendable, Hashable {
    /// The file the playbook came from, as given to the parser (used in messages).
    public var file: String
    public var steps: [PlaybookStep]
    public var handlers: [PlaybookStep]

    public init(file: String, steps: [PlaybookStep], handlers: [PlaybookStep]) {
        self.file = file
        self.steps = steps
        self.handlers = handlers
    }
}

public struct PlaybookStep: Sendable, Hashable {
    public var name: String
    /// Roles, host names or "all". Empty for handlers, which run where they were notified.
    public var hosts: [Located<String>]
    public var action: StepAction
    /// A condition evaluated per host against the template context before probing.
    public var when: Located<Condition>?
    public var notify: [Located<String>]
    /// nil: inherit the playbook's `become`.
    public var become: Bool?
    public var tags: [String]
    public var location: SourceLocation
    /// The rolling group this step belongs to (its `steps:`), nil for a step of its own.
    public var rollout: Rollout?

    public init(
        name: String, hosts: [Located<String>], action: StepAction, when: Located<Condition>? = nil,
        notify: [Located<String>] = [], become: Bool? = nil, tags: [String] = [], location: SourceLocation,
        rollout: Rollout? = nil
    ) {
        self.name = name
        self.hosts = hosts
        self.action = action
        self.when = when
        self.notify = notify
        self.become = become
        self.tags = tags
        self.location = location
        self.rollout = rollout
    }
}

/// A group of steps run on `serial` hosts at a time (a step with `steps:` and `serial:`): the
/// group begins when every host of the run has done the steps before it, hosts take their
/// turns in inventory order, each batch's steps and the handlers they notify finish before the
/// next batch starts, and nobody goes on past the group until it is over. A batch with more
/// than `maxFail` failed hosts stops the rollout: the hosts not reached are "not started".
public struct Rollout: Sendable, Hashable {
    /// Its position among the playbook's groups.
    public var id: Int
    public var name: String
    public var hosts: [Located<String>]
    public var serial: Int
    public var maxFail: Int
    public var rotation: Rotation?
    public var location: SourceLocation

    public init(id: Int, name: String, hosts: [Located<String>], serial: Int, maxFail: Int, rotation: Rotation?, location: SourceLocation) {
        self.id = id
        self.name = name
        self.hosts = hosts
        self.serial = serial
        self.maxFail = maxFail
        self.rotation = rotation
        self.location = location
    }
}

/// How a rolling group takes a host out of a load balancer's rotation while it is updated,
/// and puts it back once its steps and handlers succeeded. Only a host that is serving
/// (`serving` succeeds on it) and has something to change waits for its turn and is taken out;
/// one that is not serving yet is updated at once, beside the first batch.
public struct Rotation: Sendable, Hashable {
    /// The hosts or roles (the load balancers) that `takeOut` and `putBack` run on, as root,
    /// rendered with the rolling host's variables.
    public var via: [Located<String>]
    /// Runs on the rolling host (with the group's `become`): succeeds when it is in service.
    public var serving: TemplateArgument?
    public var takeOut: TemplateArgument
    public var putBack: TemplateArgument

    public init(via: [Located<String>], serving: TemplateArgument?, takeOut: TemplateArgument, putBack: TemplateArgument) {
        self.via = via
        self.serving = serving
        self.takeOut = takeOut
        self.putBack = putBack
    }

    /// The commands as command steps of their own, so they are rendered, checked and run like
    /// every other step.
    public func steps(of rollout: Rollout) -> (serving: PlaybookStep?, takeOut: PlaybookStep, putBack: PlaybookStep) {
        func step(_ name: String, _ run: TemplateArgument, on hosts: [Located<String>]) -> PlaybookStep {
            PlaybookStep(name: "\(rollout.name): \(name)", hosts: hosts, action: .command(CommandArguments(run: run, env: [:])), become: true, location: run.location)
        }
        return (serving.map { step("in service?", $0, on: rollout.hosts) }, step("out of rotation", takeOut, on: via), step("back in rotation", putBack, on: via))
    }
}

/// `when:` conditions: deliberately tiny (a variable's truth, or comparing it with a literal),
/// so that they can be checked before the run like template variables.
public enum Condition: Sendable, Hashable {
    case truthy(variable: String)
    case falsy(variable: String)
    case equals(variable: String, value: String)
    case notEquals(variable: String, value: String)

    public var variable: String {
        switch self {
        case .truthy(let v), .falsy(let v), .equals(let v, _), .notEquals(let v, _): return v
        }
    }
}

/// A string argument that may contain `{{ }}` template tags.
public typealias TemplateArgument = Located<String>

public enum PresenceState: String, Sendable, Hashable, CaseIterable {
    case present, absent
}

public enum ServiceState: String, Sendable, Hashable, CaseIterable {
    case started, stopped, restarted, reloaded
}

public struct PackageArguments: Sendable, Hashable {
    public var names: [TemplateArgument]
    public var state: PresenceState
    /// Refresh the apt index before installing when it is older than this; nil: only when a
    /// wanted package has no install candidate (or the index was never fetched).
    public var cacheValidTime: Int?
}

public struct FileArguments: Sendable, Hashable {
    public var path: TemplateArgument
    /// Exactly one of `content` (inline template) and `template` (a file under templates/).
    public var content: TemplateArgument?
    public var template: TemplateArgument?
    public var owner: TemplateArgument?
    public var group: TemplateArgument?
    /// Octal, e.g. "0644".
    public var mode: Located<String>?
    /// Run on the staged file before it replaces the old one; `%s` is the staged path.
    public var validate: TemplateArgument?
    public var backup: Bool
    public var state: PresenceState
}

public struct DirectoryArguments: Sendable, Hashable {
    public var path: TemplateArgument
    public var owner: TemplateArgument?
    public var group: TemplateArgument?
    public var mode: Located<String>?
    public var state: PresenceState
}

public struct LinkArguments: Sendable, Hashable {
    public var path: TemplateArgument
    /// What the link points to, as written into it: absolute, or relative to the link's folder.
    public var target: TemplateArgument?
    /// Replace a file at `path`, and link to a target that does not exist yet.
    public var force: Bool
    public var state: PresenceState
}

/// The owner, group and mode of a path that exists; its content is not the step's business.
public struct AttributesArguments: Sendable, Hashable {
    public var path: TemplateArgument
    public var owner: TemplateArgument?
    public var group: TemplateArgument?
    public var mode: Located<String>?
}

public struct BlockArguments: Sendable, Hashable {
    public var path: TemplateArgument
    public var block: TemplateArgument
    /// With `{mark}` replaced by BEGIN and END.
    public var marker: TemplateArgument
    /// A regular expression: a new block goes after the last matching line, as Ansible's
    /// blockinfile does (e.g. `^\s*http\s*\{`); `insertBefore` before the last matching line.
    public var insertAfter: Located<String>?
    public var insertBefore: Located<String>?
    public var validate: TemplateArgument?
    public var backup: Bool
    public var state: PresenceState

    public static let defaultMarker = "# {mark} LABCTL MANAGED BLOCK"
}

public struct LineArguments: Sendable, Hashable {
    public var path: TemplateArgument
    public var line: TemplateArgument?
    /// Lines matching it are replaced (present: the last match) or removed (absent).
    public var regexp: Located<String>?
    public var insertAfter: Located<String>?
    public var validate: TemplateArgument?
    public var backup: Bool
    public var create: Bool
    public var state: PresenceState
}

public struct ServiceArguments: Sendable, Hashable {
    public var name: TemplateArgument
    public var enabled: Bool?
    public var state: ServiceState?
    public var daemonReload: Bool
}

public struct CommandArguments: Sendable, Hashable {
    public var run: TemplateArgument
    /// Skip when this path exists on the host.
    public var creates: TemplateArgument?
    /// Skip when this command succeeds on the host.
    public var unless: TemplateArgument?
    public var chdir: TemplateArgument?
    public var timeout: Int?
    /// Run as this user (through `su -l`, so with that user's login environment: HOME, a
    /// profile that sets PATH for nvm...). Needs root: the login user, or `become: true`.
    public var user: TemplateArgument?
    /// Exported for the command (and for `unless`), values quoted.
    public var env: [String: TemplateArgument]
}

public struct GitArguments: Sendable, Hashable {
    public var repo: TemplateArgument
    public var dest: TemplateArgument
    /// A branch, tag, full commit id, or HEAD (the remote's default branch).
    public var ref: TemplateArgument
}

public struct UploadArguments: Sendable, Hashable {
    /// A local directory, relative to the playbook's directory.
    public var src: TemplateArgument
    public var dest: TemplateArgument
    public var owner: TemplateArgument?
    public var group: TemplateArgument?
    /// Names of entries directly inside `dest` that the host makes itself (node_modules, a
    /// lock file): left out of the comparison and carried over when a new copy replaces the old.
    public var keep: [String] = []
}

public struct WaitForArguments: Sendable, Hashable {
    public var port: Int?
    public var host: TemplateArgument?
    public var url: TemplateArgument?
    /// The systemd unit that must own what answers: a port held by some other process (an
    /// old copy of the app, another program on the same port) does not count.
    public var unit: TemplateArgument?
    /// Seconds.
    public var timeout: Int
}

public enum StepAction: Sendable, Hashable {
    case package(PackageArguments)
    case file(FileArguments)
    case directory(DirectoryArguments)
    case link(LinkArguments)
    case attributes(AttributesArguments)
    case block(BlockArguments)
    case line(LineArguments)
    case service(ServiceArguments)
    case command(CommandArguments)
    case git(GitArguments)
    case upload(UploadArguments)
    case waitFor(WaitForArguments)
    /// Run the handlers notified so far, here rather than at the end (Ansible's
    /// `meta: flush_handlers`): e.g. install dependencies and restart before waiting for a port.
    case flushHandlers

    /// The step type's key in YAML.
    public var typeName: String {
        switch self {
        case .package: return "package"
        case .file: return "file"
        case .directory: return "directory"
        case .link: return "link"
        case .attributes: return "attributes"
        case .block: return "block"
        case .line: return "line"
        case .service: return "service"
        case .command: return "command"
        case .git: return "git"
        case .upload: return "upload"
        case .waitFor: return "wait_for"
        case .flushHandlers: return "flush_handlers"
        }
    }

    /// Every string argument that is a template, for checking variables before the run.
    public var templateArguments: [TemplateArgument] {
        switch self {
        case .package(let a): return a.names
        case .file(let a): return [a.path, a.content, a.owner, a.group, a.validate].compactMap { $0 }
        case .directory(let a): return [a.path, a.owner, a.group].compactMap { $0 }
        case .link(let a): return [a.path, a.target].compactMap { $0 }
        case .attributes(let a): return [a.path, a.owner, a.group].compactMap { $0 }
        case .block(let a): return [a.path, a.block, a.marker, a.insertAfter, a.insertBefore, a.validate].compactMap { $0 }
        case .line(let a): return [a.path, a.line, a.regexp, a.insertAfter, a.validate].compactMap { $0 }
        case .service(let a): return [a.name]
        case .command(let a): return [a.run, a.creates, a.unless, a.chdir, a.user].compactMap { $0 } + a.env.keys.sorted().compactMap { a.env[$0] }
        case .git(let a): return [a.repo, a.dest, a.ref]
        case .upload(let a): return [a.src, a.dest, a.owner, a.group].compactMap { $0 }
        case .waitFor(let a): return [a.host, a.url, a.unit].compactMap { $0 }
        case .flushHandlers: return []
        }
    }

    /// The whole-file template a step names, if any (its path is relative to templates/).
    public var templateFile: TemplateArgument? {
        if case .file(let a) = self { return a.template }
        return nil
    }
}
