import Foundation
import LabSpec
import SSH

/// An open session to one host. `SSHClient` is the real one; tests may run a local shell.
public protocol HostSession: Sendable {
    func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult
    func close() async
}

extension SSHClient: HostSession {}

/// A host ready to run on: how to reach it and what its templates see.
public struct RunTarget: Sendable {
    public var facts: HostFacts
    public var ssh: SSHOptions
    /// How to become root for steps with `become: true`; nil when the login user is root.
    public var become: Become?
    public var context: TemplateContext

    public var name: String { facts.name }

    public init(facts: HostFacts, ssh: SSHOptions, become: Become?, context: TemplateContext) {
        self.facts = facts
        self.ssh = ssh
        self.become = become
        self.context = context
    }
}

public typealias HostConnector = @Sendable (RunTarget) async throws(SSHError) -> any HostSession

public struct RunOptions: Sendable {
    /// Where the playbook lives: `templates/` and upload sources are found from here.
    public var playbookDirectory: String
    /// Plan only: report what would change, change nothing.
    public var check: Bool
    /// Unified diffs of changed files in the report.
    public var diff: Bool
    /// Only these hosts or roles (nil: all).
    public var limit: [String]?
    /// Only steps with one of these tags (empty: all).
    public var tags: [String]
    /// Skip the steps before the one with this name.
    public var startAt: String?
    /// Hosts worked on at once.
    public var forks: Int
    public var backupDirectory: String

    public init(
        playbookDirectory: String, check: Bool = false, diff: Bool = false, limit: [String]? = nil, tags: [String] = [],
        startAt: String? = nil, forks: Int = 50, backupDirectory: String = "/var/backups/labctl"
    ) {
        self.playbookDirectory = playbookDirectory
        self.check = check
        self.diff = diff
        self.limit = limit
        self.tags = tags
        self.startAt = startAt
        self.forks = forks
        self.backupDirectory = backupDirectory
    }

    var planOptions: PlanOptions { PlanOptions(diff: diff, backupDirectory: backupDirectory) }
}

/// What the CLI shows while a run goes on.
public enum RunEvent: Sendable {
    case connecting(host: String)
    case connected(host: String, seconds: Double)
    case unreachable(host: String, message: String)
    /// A step is about to change something (it may take a while: a spinner fits here).
    case stepStarted(host: String, step: String, handler: Bool)
    case stepFinished(host: String, result: StepResult)
    /// A line a step's command printed (for -vv).
    case output(host: String, step: String, line: OutputLine)
    case hostFinished(HostReport)
}

/// Runs a playbook on every host at once: one SSH session per host, hosts in parallel
/// (up to `forks`), steps in order on each host.
///
/// Round trips are the cost that matters (see design.md §2), so each host gets: one command
/// that probes every step's facts; then, for each step whose plan is not empty, one command
/// that applies it *and* re-probes the steps after it (an earlier change can change what a
/// later step finds: a package that installs a config file, say). A run with nothing to do is
/// one round trip per host; each change adds one.
public struct PlaybookRunner: Sendable {
    public let targets: [RunTarget]
    public let options: RunOptions
    public let connector: HostConnector

    public init(targets: [RunTarget], options: RunOptions, connector: HostConnector? = nil) {
        self.targets = targets
        self.options = options
        self.compiler = StepCompiler(playbookDirectory: options.playbookDirectory, options: options.planOptions)
        if let connector {
            self.connector = connector
        } else {
            self.connector = PlaybookRunner.connectOverSSH
        }
    }

    /// The real connector. A named function, because a typed-throws closure literal in this
    /// position crashes the Swift 6.3 compiler (SILGen).
    @Sendable public static func connectOverSSH(_ target: RunTarget) async throws(SSHError) -> any HostSession {
        try await SSHClient.connect(target.ssh)
    }

    public init(inventory: Inventory, secrets: ConnectionSecrets = ConnectionSecrets(), options: RunOptions, connector: HostConnector? = nil) {
        self.init(targets: InventoryContext.targets(inventory, secrets: secrets), options: options, connector: connector)
    }

    /// Made once: it caches upload sources for the whole run.
    let compiler: StepCompiler

    /// The checks that need the inventory (targets, template variables, template files,
    /// upload sources, --start-at). Run it before `run`; problems mean exit code 4.
    public func validate(_ playbook: Playbook) -> [PlaybookIssue] {
        let validator = PlaybookValidator(
            hosts: targets.map(\.facts), contexts: Dictionary(uniqueKeysWithValues: targets.map { ($0.name, $0.context) }),
            compiler: compiler)
        var issues = validator.validate(playbook)
        let known = Set(targets.map(\.name) + targets.flatMap(\.facts.roles) + ["all"])
        for name in options.limit ?? [] where !known.contains(name) {
            let hint = PlaybookSuggestion.hint(for: name, in: known.sorted())
            issues.append(PlaybookIssue("--limit names '\(name)', which is neither a host nor a role of the inventory\(hint)", at: SourceLocation(file: playbook.file, line: 1, column: 1)))
        }
        if let startAt = options.startAt, !playbook.steps.contains(where: { $0.name == startAt }) {
            let hint = PlaybookSuggestion.hint(for: startAt, in: playbook.steps.map(\.name))
            issues.append(PlaybookIssue("--start-at names '\(startAt)', which is not a step of the playbook\(hint)", at: SourceLocation(file: playbook.file, line: 1, column: 1)))
        }
        return issues
    }

    /// The steps this run considers, after --start-at and --tags.
    func selectedSteps(_ playbook: Playbook) -> [PlaybookStep] {
        var steps = playbook.steps
        if let startAt = options.startAt, let index = steps.firstIndex(where: { $0.name == startAt }) {
            steps = Array(steps[index...])
        }
        if !options.tags.isEmpty {
            steps = steps.filter { !Set($0.tags).isDisjoint(with: options.tags) }
        }
        return steps
    }

    var selectedTargets: [RunTarget] {
        guard let limit = options.limit, !limit.contains("all") else { return targets }
        let names = Set(limit)
        return targets.filter { names.contains($0.name) || $0.facts.roles.contains(where: names.contains) }
    }

    public func run(_ playbook: Playbook, progress: @escaping @Sendable (RunEvent) -> Void = { _ in }) async -> RunReport {
        let started = Date()
        let clock = ContinuousClock.now
        let steps = selectedSteps(playbook)
        let hosts = selectedTargets.filter { target in
            steps.contains { PlaybookValidator.targets(of: $0, in: [target.facts]).isEmpty == false }
        }
        let forks = max(1, options.forks)
        var reports: [String: HostReport] = [:]
        await withTaskGroup(of: HostReport.self) { group in
            var next = 0
            func startNext() {
                // After Ctrl-C no new host is started; those left are reported as cancelled.
                guard next < hosts.count, !Task.isCancelled else { return }
                let target = hosts[next]
                next += 1
                group.addTask {
                    await HostRun(target: target, runner: self, playbook: playbook, steps: steps, progress: progress).run()
                }
            }
            for _ in 0..<min(forks, hosts.count) { startNext() }
            for await report in group {
                reports[report.host] = report
                progress(.hostFinished(report))
                startNext()
            }
        }
        let ordered = hosts.map { reports[$0.name] ?? HostReport(host: $0.name, status: .cancelled, error: "interrupted") }
        return RunReport(
            playbook: playbook.file, check: options.check, startedAt: started,
            seconds: (ContinuousClock.now - clock).seconds, hosts: ordered)
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

/// One host's run: its session, its steps, their facts and results.
struct HostRun {
    let target: RunTarget
    let runner: PlaybookRunner
    let playbook: Playbook
    let steps: [PlaybookStep]
    let progress: @Sendable (RunEvent) -> Void

    /// A step compiled for this host.
    struct Entry {
        /// Its position in its list: probe sections are keyed by it.
        var id: Int
        var step: PlaybookStep
        var handler: Bool
        /// nil when the step is skipped on this host.
        var operation: (any StepOperation)?
        var skip: String? = nil
    }

    enum Stop: Error {
        case failed(String)
        case cancelled
    }

    var host: String { target.name }

    func run() async -> HostReport {
        let start = ContinuousClock.now
        if Task.isCancelled { return HostReport(host: host, status: .cancelled, error: "interrupted") }
        progress(.connecting(host: host))
        let session: any HostSession
        do {
            session = try await runner.connector(target)
        } catch {
            if Task.isCancelled { return HostReport(host: host, status: .cancelled, error: "interrupted") }
            progress(.unreachable(host: host, message: error.summary))
            return HostReport(host: host, status: .unreachable, error: error.summary, seconds: (ContinuousClock.now - start).seconds)
        }
        let connectSeconds = (ContinuousClock.now - start).seconds
        progress(.connected(host: host, seconds: connectSeconds))
        var state = State(session: session)
        var status = HostStatus.ok
        var failure: String?
        do throws(Stop) {
            // Steps run in segments: a `flush_handlers` step ends one and runs the handlers
            // notified so far; the rest run at the end.
            var segments: [[Entry]] = [[]]
            var count = 0
            for step in steps where !PlaybookValidator.targets(of: step, in: [target.facts]).isEmpty {
                defer { count += 1 }
                if let when = step.when, !target.context.evaluate(when.value) {
                    segments[segments.count - 1].append(Entry(id: count, step: step, handler: false, operation: nil, skip: "condition is false: \(when.value.text)"))
                    continue
                }
                if step.action == .flushHandlers {
                    segments.append([])
                    continue
                }
                segments[segments.count - 1].append(Entry(id: count, step: step, handler: false, operation: try compile(step, state: &state)))
            }
            for segment in segments {
                try await execute(segment, state: &state)
                try await runHandlers(state: &state)
            }
        } catch {
            switch error {
            case .failed(let message):
                status = .failed
                failure = message
            case .cancelled:
                status = .cancelled
                failure = "interrupted"
            }
        }
        await session.close()
        return HostReport(
            host: host, status: status, error: failure, steps: state.results, connectSeconds: connectSeconds,
            roundTrips: state.roundTrips, probeSeconds: state.probeSeconds, seconds: (ContinuousClock.now - start).seconds)
    }

    /// The handlers notified since they last ran, once each, in the order the playbook lists them.
    func runHandlers(state: inout State) async throws(Stop) {
        let notified = playbook.handlers.filter { state.notified.contains($0.name) }
        state.notified = []
        var entries: [Entry] = []
        for handler in notified {
            if let when = handler.when, !target.context.evaluate(when.value) {
                entries.append(Entry(id: entries.count, step: handler, handler: true, operation: nil, skip: "condition is false: \(when.value.text)"))
                continue
            }
            entries.append(Entry(id: entries.count, step: handler, handler: true, operation: try compile(handler, state: &state, handler: true)))
        }
        try await execute(entries, state: &state)
    }

    func compile(_ step: PlaybookStep, state: inout State, handler: Bool = false) throws(Stop) -> any StepOperation {
        do {
            return try runner.compiler.operation(for: step.action, context: target.context)
        } catch {
            let message = error.description
            state.record(StepResult(name: step.name, type: step.action.typeName, status: .failed, handler: handler, message: message), progress: progress, host: host)
            throw .failed("\(step.name): \(message)")
        }
    }

    struct State {
        var session: any HostSession
        var results: [StepResult] = []
        var notified: Set<String> = []
        var roundTrips = 0
        var probeSeconds = 0.0

        mutating func record(_ result: StepResult, progress: @Sendable (RunEvent) -> Void, host: String) {
            results.append(result)
            progress(.stepFinished(host: host, result: result))
        }
    }

    func becomeFor(_ step: PlaybookStep) -> Become? { step.become == true ? target.become : nil }

    /// Probe all, plan in order, apply what differs (re-probing what follows each change).
    func execute(_ entries: [Entry], state: inout State) async throws(Stop) {
        guard !entries.isEmpty else { return }
        var pending = entries[...]
        var facts = try await probe(pending, state: &state)
        var wouldChange = false
        while let entry = pending.first {
            if Task.isCancelled { throw .cancelled }
            pending = pending.dropFirst()
            let clock = ContinuousClock.now
            let step = entry.step
            func result(_ status: StepStatus, message: String? = nil, plan: StepPlan? = nil, output: String? = nil) -> StepResult {
                StepResult(
                    name: step.name, type: step.action.typeName, status: status, handler: entry.handler,
                    seconds: (ContinuousClock.now - clock).seconds, message: message, summary: plan?.summary ?? [],
                    diff: plan?.diff.flatMap { $0.isEmpty ? nil : $0 }, output: output)
            }
            guard let operation = entry.operation else {
                state.record(result(.skipped, message: entry.skip), progress: progress, host: host)
                continue
            }
            guard let stepFacts = facts[entry.id] else {
                state.record(result(.failed, message: "the probe did not report on this step (the host's shell stopped early)"), progress: progress, host: host)
                throw .failed("\(step.name): the probe did not finish")
            }
            let plan: StepPlan
            do {
                plan = try operation.plan(stepFacts)
            } catch {
                if runner.options.check, wouldChange {
                    // The facts predate changes check mode did not make (a directory a file
                    // goes into, say): this step cannot be judged, which is not a failure.
                    state.record(result(.skipped, message: "cannot be checked before the changes above are made: \(error.message)"), progress: progress, host: host)
                    continue
                }
                state.record(result(.failed, message: error.message), progress: progress, host: host)
                throw .failed("\(step.name): \(error.message)")
            }
            if plan.isEmpty {
                state.record(result(.ok), progress: progress, host: host)
                continue
            }
            if runner.options.check {
                // Later steps are planned on facts from before this change, as Ansible's check mode does.
                wouldChange = wouldChange || plan.changes
                state.record(result(plan.changes ? .changed : .ok, plan: plan), progress: progress, host: host)
                if plan.changes { state.notified.formUnion(step.notify.map(\.value)) }
                continue
            }
            progress(.stepStarted(host: host, step: step.name, handler: entry.handler))
            // The steps after a change are looked at again in the same command, unless they
            // need root and this step does not (root sees at least as much, so the other way
            // round is fine).
            let reprobeBecome = becomeFor(pending)
            let combine = plan.changes && (reprobeBecome == nil || reprobeBecome == becomeFor(step))
            let outcome = try await apply(plan, entry: entry, reprobe: combine ? pending : [], state: &state)
            if let failure = outcome.failure {
                state.record(result(.failed, message: failure, plan: plan, output: outcome.output), progress: progress, host: host)
                throw .failed("\(step.name): \(failure)")
            }
            state.record(
                result(plan.changes ? .changed : .ok, plan: plan, output: plan.capturesOutput ? outcome.output : nil),
                progress: progress, host: host)
            if plan.changes {
                state.notified.formUnion(step.notify.map(\.value))
                facts = outcome.reprobed ? outcome.facts : try await probe(pending, state: &state)
            }
        }
    }

    func probe(_ pending: ArraySlice<Entry>, state: inout State) async throws(Stop) -> [Int: Facts] {
        let steps = pending.compactMap { entry in entry.operation.map { (entry.id, $0) } }
        if steps.isEmpty { return [:] }
        let script = ProbeScript(steps: steps)
        state.roundTrips += 1
        let started = ContinuousClock.now
        defer { state.probeSeconds += (ContinuousClock.now - started).seconds }
        let result: CommandResult
        do {
            // The script goes on stdin: one command-line argument is limited to 128 KiB on
            // Linux, and a long playbook's probes could pass that.
            result = try await state.session.run(
                RemoteCommand(arguments: ["sh", "-s"], stdin: Array(script.script.utf8), timeout: .seconds(300), become: becomeFor(pending)), onLine: nil)
        } catch {
            if Task.isCancelled { throw .cancelled }
            throw .failed("probing the host failed: \(error.summary)")
        }
        let facts = script.parse(result.stdoutText)
        if facts.count < script.stepIDs.count, !result.succeeded {
            // The shell never got going (sudo refused, no sh...): say what the host said.
            let stderr = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            let how = result.exitSignal.map { "was killed by SIG\($0)" } ?? "exited with status \(result.exitStatus)"
            throw .failed("probing the host failed: " + (stderr.isEmpty ? "the shell \(how)" : stderr.split(separator: "\n").suffix(3).joined(separator: " | ")))
        }
        return facts
    }

    /// Root for a probe when any of the steps it looks at asks for it.
    func becomeFor(_ entries: ArraySlice<Entry>) -> Become? {
        entries.contains { $0.step.become == true && $0.operation != nil } ? target.become : nil
    }

    struct Outcome {
        var failure: String?
        var output: String?
        var facts: [Int: Facts]
        /// Whether `facts` holds the re-probe of the steps after this one.
        var reprobed = false
    }

    /// Applies one plan and, in the same command, probes `reprobe` when the plan succeeded.
    func apply(_ plan: StepPlan, entry: Entry, reprobe: ArraySlice<Entry>, state: inout State) async throws(Stop) -> Outcome {
        let probe = ProbeScript(steps: reprobe.compactMap { entry in entry.operation.map { (entry.id, $0) } })
        let marker = "@@\(probe.nonce) applied"
        // The plan runs in a subshell so its `set -e` and EXIT trap stay its own; its status
        // decides whether the probe runs.
        var script = "(\n\(plan.script))\ns=$?\nprintf '\\n\(marker) %s\\n' \"$s\"\n[ \"$s\" -eq 0 ] || exit \"$s\"\n"
        // Stdin carries the step's data, so the re-probe rides in the command line: only while
        // it stays well below Linux's 128 KiB limit for one argument.
        let reprobed = !probe.stepIDs.isEmpty && script.utf8.count + probe.script.utf8.count < 100_000
        if reprobed { script += probe.script }
        let timeout: Duration? = {
            switch entry.operation {
            case let wait as WaitForOperation: return .seconds(min(wait.timeout, 31_536_000) + 60)
            case let command as CommandOperation: return command.timeout.map { .seconds(min($0, 31_536_000) + 60) }
            default: return nil
            }
        }()
        let step = entry.step.name
        let host = self.host
        let progress = self.progress
        let nonce = probe.nonce
        let pastMarker = Flag()
        state.roundTrips += 1
        let result: CommandResult
        do {
            result = try await state.session.run(
                RemoteCommand(arguments: ["sh", "-c", script], stdin: plan.stdin, timeout: timeout, become: becomeFor(entry.step)),
                onLine: { line in
                    // Lines after the marker belong to the re-probe, not to the step.
                    if line.stream == .stdout, line.text.hasPrefix("@@\(nonce)") { pastMarker.set() }
                    if !pastMarker.isSet { progress(.output(host: host, step: step, line: line)) }
                })
        } catch {
            if Task.isCancelled { throw .cancelled }
            return Outcome(failure: error.summary, output: nil, facts: [:])
        }
        let stdout = result.stdoutText
        let split = stdout.range(of: "\n\(marker) ")
        let output = split.map { String(stdout[..<$0.lowerBound]) } ?? stdout
        let trimmedOutput = output.trimmingCharacters(in: .newlines)
        if !result.succeeded || split == nil {
            let stderr = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            let how = result.exitSignal.map { "was killed by SIG\($0)" } ?? "exited with status \(result.exitStatus)"
            let message = stderr.isEmpty ? "the step's commands \(how)" : stderr.split(separator: "\n").suffix(5).joined(separator: "\n")
            return Outcome(failure: message, output: trimmedOutput.isEmpty ? nil : trimmedOutput, facts: [:])
        }
        return Outcome(failure: nil, output: trimmedOutput, facts: probe.parse(String(stdout[split!.upperBound...])), reprobed: reprobed)
    }
}

extension Condition {
    var text: String {
        switch self {
        case .truthy(let v): return v
        case .falsy(let v): return "not \(v)"
        case .equals(let v, let value): return "\(v) == \"\(value)\""
        case .notEquals(let v, let value): return "\(v) != \"\(value)\""
        }
    }
}

/// A flag set once from the SSH module's output callback and read there too.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
