import Foundation
import LabSpec

/// A host as the engine sees it for templates and targeting.
public struct HostFacts: Sendable, Hashable {
    public var name: String
    public var address: String
    public var roles: [String]
    public var vars: [String: JSONValue]
    /// More fields of the host's template value (port, user, upstream ...).
    public var extra: [String: JSONValue]

    public init(name: String, address: String, roles: [String], vars: [String: JSONValue] = [:], extra: [String: JSONValue] = [:]) {
        self.name = name
        self.address = address
        self.roles = roles
        self.vars = vars
        self.extra = extra
    }

    var templateValue: JSONValue {
        .object(extra.merging([
            "name": .string(name), "address": .string(address),
            // For `address:port` in URLs and nginx's server lines (IPv6 in brackets).
            "url_address": .string(ValueForm.hostInURL(address)),
            "roles": .array(roles.map(JSONValue.string)), "vars": .object(vars),
        ]) { $1 })
    }
}

extension TemplateContext {
    /// The context of one host: `host` (name, address, roles, vars), `vars` (the same vars at
    /// the top), `hosts` (every host), `roles.<role>` (the hosts of each role, in inventory
    /// order) and whatever `globals` holds (domain, app, nginx ...).
    public static func forHost(_ host: HostFacts, allHosts: [HostFacts], globals: [String: JSONValue]) -> TemplateContext {
        Fleet(allHosts, globals: globals).context(for: host)
    }

    /// The context of every host in `hosts`, in order. What all hosts share (the fleet lists,
    /// the globals) is built and converted once: the work is linear in hosts, not squared.
    public static func forHosts(_ hosts: [HostFacts], globals: [String: JSONValue]) -> [TemplateContext] {
        let fleet = Fleet(hosts, globals: globals)
        return hosts.map(fleet.context(for:))
    }

    private struct Fleet {
        var shared: [String: JSONValue]
        var converted: [String: Any]

        init(_ hosts: [HostFacts], globals: [String: JSONValue]) {
            let values = hosts.map(\.templateValue)
            var roles: [String: [JSONValue]] = [:]
            for (host, value) in zip(hosts, values) {
                for role in host.roles { roles[role, default: []].append(value) }
            }
            shared = globals
            shared["hosts"] = .array(values)
            shared["roles"] = .object(roles.mapValues(JSONValue.array))
            converted = shared.mapValues(\.mustacheObject)
        }

        func context(for host: HostFacts) -> TemplateContext {
            var root = shared
            root["host"] = host.templateValue
            root["vars"] = .object(host.vars)
            var converted = converted
            // A global named like a per-host key is overridden, as before.
            converted["host"] = nil
            converted["vars"] = nil
            return TemplateContext(root, converted: converted)
        }
    }
}

/// Why a step could not be turned into an operation for a host.
public enum StepCompileError: Error, Sendable, CustomStringConvertible {
    case template(TemplateError)
    case failure(SourceLocation, String)

    public var description: String {
        switch self {
        case .template(let error): return error.description
        case .failure(let location, let message): return "\(location): \(message)"
        }
    }

    var issues: [PlaybookIssue] {
        switch self {
        case .template(let error): return error.issues.map { PlaybookIssue($0.message, at: $0.location) }
        case .failure(let location, let message): return [PlaybookIssue(message, at: location)]
        }
    }
}

/// Renders a step's arguments for one host and builds its operation.
public struct StepCompiler: Sendable {
    /// The directory of the playbook: templates are under `templates/`, upload sources are
    /// relative to it.
    public var playbookDirectory: String
    public var options: PlanOptions
    /// Upload sources read once per run, not once per host.
    let trees = LocalTreeCache()

    public init(playbookDirectory: String, options: PlanOptions = .init()) {
        self.playbookDirectory = playbookDirectory
        self.options = options
    }

    public var templatesDirectory: String { (playbookDirectory as NSString).appendingPathComponent("templates") }

    public func operation(for action: StepAction, context: TemplateContext) throws(StepCompileError) -> any StepOperation {
        var issues: [TemplateIssue] = []
        /// A rendered argument. Only contents (which travel on stdin) may hold a NUL byte: on a
        /// command line it would cut the line short and change what the rest of it means.
        func render(_ argument: TemplateArgument?, _ mode: TemplateMode = .text, content: Bool = false) -> String? {
            guard let argument else { return nil }
            do {
                let text = try context.render(argument.value, origin: argument.location, mode: mode)
                if !content, text.utf8.contains(0) {
                    issues.append(TemplateIssue(
                        message: "the value holds a NUL byte once rendered, which no command line on a host can carry",
                        location: argument.location))
                }
                return text
            } catch {
                issues += error.issues
                return ""
            }
        }
        /// One line of a file: a line break in it would make the step add lines on every run.
        func singleLine(_ argument: TemplateArgument?, _ name: String) -> String? {
            guard let argument, let text = render(argument) else { return nil }
            if text.contains(where: \.isNewline) {
                issues.append(TemplateIssue(
                    message: "'\(name)' holds a line break once rendered (\(ValueForm.shown(text))); a \(name) is one line (a block step manages several)",
                    location: argument.location))
            }
            return text
        }
        /// Shell text: values inside it are quoted words.
        func shell(_ argument: TemplateArgument?) -> String? { render(argument, .shell) }
        /// A value handed to a program on the host as one argument: rendered, then held to its
        /// form (a path, a unit, a user...), so that it cannot be read as an option or land
        /// somewhere the user did not mean.
        func value(_ argument: TemplateArgument?, _ form: ValueForm, _ name: String) -> String? {
            let known = issues.count
            guard let argument, let text = render(argument) else { return nil }
            if issues.count == known, let problem = form.problem(text) {
                issues.append(TemplateIssue(message: "'\(name)' \(problem)", location: argument.location))
            }
            return text
        }
        func mode(_ argument: Located<String>?) -> Int? { argument.flatMap { FileCommands.parseMode($0.value) } }
        /// A regular expression that may be a template: rendered, then checked.
        func pattern(_ argument: Located<String>?, _ name: String) -> String? {
            guard let argument, let text = render(argument) else { return nil }
            if argument.value.contains("{{"), (try? NSRegularExpression(pattern: text)) == nil {
                issues.append(TemplateIssue(message: "'\(name)' is not a valid regular expression once rendered: \(text)", location: argument.location))
            }
            return text
        }

        let operation: any StepOperation
        switch action {
        case .package(let a):
            operation = PackageOperation(
                names: a.names.map { value($0, .packageName, "name")! }, state: a.state, cacheValidTime: a.cacheValidTime)
        case .file(let a):
            var content = render(a.content, content: true)
            if let template = a.template {
                let name = render(template)!
                let path = (templatesDirectory as NSString).appendingPathComponent(name)
                let root = URL(fileURLWithPath: templatesDirectory).standardizedFileURL.resolvingSymlinksInPath().path
                let resolved = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
                guard !name.hasPrefix("/"), resolved.hasPrefix(root + "/") else {
                    throw .failure(template.location, "the template \(name) is outside the playbook's templates/ folder; name a file inside \(templatesDirectory), e.g. nginx/site.conf")
                }
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw .failure(template.location, "the template \(name) does not exist (looked for \(path))")
                }
                let mode = TemplateMode.forTemplateFile(named: name, text: text)
                do {
                    content = try context.render(text, origin: SourceLocation(file: path, line: 1, column: 1), mode: mode)
                    if mode == .shell, content?.utf8.contains(0) == true {
                        issues.append(TemplateIssue(
                            message: "a value in the shell template \(name) holds a NUL byte, which no shell script can carry",
                            location: template.location))
                    }
                } catch {
                    issues += error.issues
                }
            }
            operation = FileOperation(
                path: value(a.path, .absolutePath, "path")!, content: content, owner: value(a.owner, .userOrGroup, "owner"),
                group: value(a.group, .userOrGroup, "group"), mode: mode(a.mode), validate: shell(a.validate), backup: a.backup,
                state: a.state, options: options)
        case .directory(let a):
            operation = DirectoryOperation(
                path: value(a.path, .absolutePath, "path")!, owner: value(a.owner, .userOrGroup, "owner"),
                group: value(a.group, .userOrGroup, "group"), mode: mode(a.mode), state: a.state)
        case .link(let a):
            operation = LinkOperation(
                path: value(a.path, .absolutePath, "path")!, target: value(a.target, .linkTarget, "target"), force: a.force, state: a.state)
        case .attributes(let a):
            operation = AttributesOperation(
                path: value(a.path, .absolutePath, "path")!, owner: value(a.owner, .userOrGroup, "owner"),
                group: value(a.group, .userOrGroup, "group"), mode: mode(a.mode))
        case .block(let a):
            operation = ManagedBlockOperation(
                path: value(a.path, .absolutePath, "path")!, block: render(a.block, content: true)!, marker: singleLine(a.marker, "marker")!,
                insertAfter: pattern(a.insertAfter, "insert_after"), insertBefore: pattern(a.insertBefore, "insert_before"),
                validate: shell(a.validate), backup: a.backup, state: a.state, options: options)
        case .line(let a):
            operation = LineOperation(
                path: value(a.path, .absolutePath, "path")!, line: singleLine(a.line, "line"), regexp: pattern(a.regexp, "regexp"),
                insertAfter: pattern(a.insertAfter, "insert_after"), validate: shell(a.validate), backup: a.backup,
                create: a.create, state: a.state, options: options)
        case .service(let a):
            operation = ServiceOperation(
                name: value(a.name, .unitName, "name")!, enabled: a.enabled, state: a.state, daemonReload: a.daemonReload)
        case .command(let a):
            operation = CommandOperation(
                run: shell(a.run)!, creates: value(a.creates, .absolutePath, "creates"), unless: shell(a.unless),
                chdir: value(a.chdir, .absolutePath, "chdir"), timeout: a.timeout, user: value(a.user, .userOrGroup, "user"),
                env: a.env.mapValues { render($0)! })
        case .git(let a):
            operation = GitOperation(
                repo: value(a.repo, .gitRepository, "repo")!, dest: value(a.dest, .absolutePath, "dest")!,
                ref: value(a.ref, .gitRef, "ref")!)
        case .upload(let a):
            let source = render(a.src)!
            let dest = value(a.dest, .absolutePath, "dest")!
            let owner = value(a.owner, .userOrGroup, "owner")
            let group = value(a.group, .userOrGroup, "group")
            guard issues.isEmpty else { throw .template(TemplateError(issues: issues)) }
            let path = source.hasPrefix("/") ? source : (playbookDirectory as NSString).appendingPathComponent(source)
            do {
                operation = UploadOperation(source: try trees.load(path), dest: dest, owner: owner, group: group, keep: a.keep)
            } catch {
                throw .failure(a.src.location, error.message)
            }
        case .flushHandlers:
            operation = FlushHandlersOperation()
        case .waitFor(let a):
            operation = WaitForOperation(
                port: a.port, host: value(a.host, .hostOrAddress, "host") ?? "127.0.0.1", url: value(a.url, .httpURL, "url"),
                unit: value(a.unit, .unitName, "unit"), timeout: a.timeout)
        }
        if !issues.isEmpty { throw .template(TemplateError(issues: issues)) }
        return operation
    }
}

/// The second validation pass, which needs the inventory: targets that name no role or host,
/// `when` and template variables that do not exist for a host the step runs on, template
/// files and upload sources that are missing.
public struct PlaybookValidator: Sendable {
    public var hosts: [HostFacts]
    public var contexts: [String: TemplateContext]
    public var compiler: StepCompiler

    public init(hosts: [HostFacts], contexts: [String: TemplateContext], compiler: StepCompiler) {
        self.hosts = hosts
        self.contexts = contexts
        self.compiler = compiler
    }

    /// The hosts a step runs on, in inventory order.
    public static func targets(of step: PlaybookStep, in hosts: [HostFacts]) -> [HostFacts] {
        targets(of: step.hosts, in: hosts)
    }

    /// The hosts that roles, host names or "all" name, in inventory order.
    public static func targets(of names: [Located<String>], in hosts: [HostFacts]) -> [HostFacts] {
        let names = Set(names.map(\.value))
        if names.contains("all") { return hosts }
        return hosts.filter { host in names.contains(host.name) || host.roles.contains(where: names.contains) }
    }

    /// The playbook's rolling groups, in order.
    public static func rollouts(of playbook: Playbook) -> [Rollout] {
        var seen = Set<Int>()
        return playbook.steps.compactMap(\.rollout).filter { seen.insert($0.id).inserted }
    }

    public func validate(_ playbook: Playbook) -> [PlaybookIssue] {
        var issues: [PlaybookIssue] = []
        let roles = Set(hosts.flatMap(\.roles))
        let names = Set(hosts.map(\.name))
        for step in playbook.steps {
            for target in step.hosts where target.value != "all" && !roles.contains(target.value) && !names.contains(target.value) {
                let hint = Suggestion.hint(for: target.value, in: roles.sorted() + names.sorted())
                issues.append(PlaybookIssue(
                    "hosts names '\(target.value)', which is neither a role nor a host in the inventory\(hint) (roles: \(roles.sorted().joined(separator: ", ")))",
                    at: target.location))
            }
        }
        // Handlers run on the hosts of the steps that notify them.
        var handlerHosts: [String: [HostFacts]] = [:]
        for step in playbook.steps {
            for name in step.notify {
                handlerHosts[name.value, default: []] += Self.targets(of: step, in: hosts)
            }
        }
        // A rotation's commands are rendered with the rolling host's variables, wherever they run.
        var rotationSteps: [(PlaybookStep, [HostFacts])] = []
        for rollout in Self.rollouts(of: playbook) {
            guard let rotation = rollout.rotation else { continue }
            for target in rotation.via where target.value != "all" && !roles.contains(target.value) && !names.contains(target.value) {
                let hint = Suggestion.hint(for: target.value, in: roles.sorted() + names.sorted())
                issues.append(PlaybookIssue(
                    "'via' of the rotation names '\(target.value)', which is neither a role nor a host in the inventory\(hint) (roles: \(roles.sorted().joined(separator: ", ")))",
                    at: target.location))
            }
            let rolling = Self.targets(of: rollout.hosts, in: hosts)
            let commands = rotation.steps(of: rollout)
            rotationSteps += ([commands.serving, commands.takeOut, commands.putBack].compactMap { $0 }).map { ($0, rolling) }
        }
        let all = playbook.steps.map { ($0, Self.targets(of: $0, in: hosts)) }
            + playbook.handlers.map { handler in
                let targets = handlerHosts[handler.name] ?? []
                return (handler, hosts.filter { h in targets.contains { $0.name == h.name } })
            }
            + rotationSteps
        for (step, targets) in all {
            // One entry per problem, naming the hosts it concerns when it is not all of them.
            var found: [PlaybookIssue: [String]] = [:]
            var order: [PlaybookIssue] = []
            func add(_ issue: PlaybookIssue, _ host: String) {
                if found[issue] == nil { order.append(issue) }
                found[issue, default: []].append(host)
            }
            for host in targets {
                guard let context = contexts[host.name] else { continue }
                if let when = step.when {
                    if context.value(at: when.value.variable) == nil {
                        let hint = Suggestion.hint(for: when.value.variable, in: context.knownNames)
                        add(PlaybookIssue("'when' names the variable '\(when.value.variable)', which does not exist\(hint)", at: when.location), host.name)
                        continue
                    }
                    // Skipped on this host: its arguments may rightly name what this host lacks
                    // (an upload folder in an inventory that clones from git, say).
                    if !context.evaluate(when.value) { continue }
                }
                do {
                    _ = try compiler.operation(for: step.action, context: context)
                } catch {
                    for issue in error.issues { add(issue, host.name) }
                }
            }
            for issue in order {
                let concerned = found[issue]!
                if concerned.count == targets.count || targets.count <= 1 {
                    issues.append(issue)
                } else {
                    issues.append(PlaybookIssue(issue.message + " (for \(concerned.joined(separator: ", ")))", at: issue.location))
                }
            }
        }
        return issues
    }
}

/// Local directories already read and packed, by path.
final class LocalTreeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var trees: [String: Result<LocalTree, StepFailure>] = [:]

    func load(_ path: String) throws(StepFailure) -> LocalTree {
        // Held while loading so that hosts compiled at once read a directory once.
        let result = lock.withLock {
            if let known = trees[path] { return known }
            let loaded = Result<LocalTree, StepFailure> { () throws(StepFailure) in try LocalTree.load(path) }
            trees[path] = loaded
            return loaded
        }
        return try result.get()
    }
}
