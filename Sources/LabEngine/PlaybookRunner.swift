import Foundation
import LabSpec
import SSH

/// A host ready to run on: how to reach it and what its templates see.
public struct RunTarget: Sendable {
    public var facts: HostFacts
    public var ssh: SSHOptions
    /// How to become root for steps with `become: true`; nil when the login user is root.
    public var become: Become?
    public var context: TemplateContext
    /// This host's own state directory instead of the run's `stateDirectory`: for several
    /// "hosts" that are one machine (tests), whose records must not meet.
    public var stateDirectory: String?

    public var name: String { facts.name }

    public init(facts: HostFacts, ssh: SSHOptions, become: Become?, context: TemplateContext, stateDirectory: String? = nil) {
        self.facts = facts
        self.ssh = ssh
        self.become = become
        self.context = context
        self.stateDirectory = stateDirectory
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
    /// Leave out steps with one of these tags.
    public var skipTags: [String]
    /// Skip the steps before the one with this name.
    public var startAt: String?
    /// Hosts worked on at once.
    public var forks: Int
    public var backupDirectory: String
    /// labctl's own state on each host: the records of handlers still owed (`pending/`).
    public var stateDirectory: String
    /// Another run holding a host's lock: nil fails the host at once (naming that run); a
    /// number of seconds waits that long for it.
    public var lockWait: Int?

    public init(
        playbookDirectory: String, check: Bool = false, diff: Bool = false, limit: [String]? = nil, tags: [String] = [],
        skipTags: [String] = [], startAt: String? = nil, forks: Int = 50, backupDirectory: String = "/var/backups/labctl",
        stateDirectory: String = "/var/lib/labctl", lockWait: Int? = nil
    ) {
        self.playbookDirectory = playbookDirectory
        self.check = check
        self.diff = diff
        self.limit = limit
        self.tags = tags
        self.skipTags = skipTags
        self.startAt = startAt
        self.forks = forks
        self.backupDirectory = backupDirectory
        self.stateDirectory = stateDirectory
        self.lockWait = lockWait
    }

    var planOptions: PlanOptions { PlanOptions(diff: diff, backupDirectory: backupDirectory) }
}

/// What the CLI shows while a run goes on.
public enum RunEvent: Sendable {
    case connecting(host: String)
    case connected(host: String, seconds: Double)
    /// `accept-new` recorded the host's key in known_hosts on this connection (type and
    /// SHA256 fingerprint), so that the user can compare it with the host's own.
    case hostKeyRecorded(host: String, key: String)
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
/// Round trips are the cost that matters (a command on an open session costs milliseconds, a
/// login shell whose rc file does work adds ~100 ms to each), so each host gets: one command
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
            let hint = Suggestion.hint(for: name, in: known.sorted())
            issues.append(PlaybookIssue("--limit names '\(name)', which is neither a host nor a role of the inventory\(hint)", at: SourceLocation(file: playbook.file, line: 1, column: 1)))
        }
        if let startAt = options.startAt, !playbook.steps.contains(where: { $0.name == startAt }) {
            let hint = Suggestion.hint(for: startAt, in: playbook.steps.map(\.name))
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
        if !options.skipTags.isEmpty {
            steps = steps.filter { Set($0.tags).isDisjoint(with: options.skipTags) }
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
        // A rolling group needs every host of the run at its start (it begins when all have
        // reached it), so a playbook with one works on all its hosts at once.
        let rollouts = PlaybookValidator.rollouts(of: Playbook(file: playbook.file, steps: steps, handlers: []))
        let coordinator = rollouts.isEmpty ? nil : RolloutCoordinator(
            hosts: hosts.map(\.name),
            rollouts: rollouts.map { ($0, PlaybookValidator.targets(of: $0.hosts, in: hosts.map(\.facts)).map(\.name)) })
        let forks = rollouts.isEmpty ? max(1, options.forks) : max(1, hosts.count)
        var reports: [String: HostReport] = [:]
        await withTaskGroup(of: HostReport.self) { group in
            var next = 0
            func startNext() {
                // After Ctrl-C no new host is started; those left are reported as cancelled.
                guard next < hosts.count, !Task.isCancelled else { return }
                let target = hosts[next]
                next += 1
                group.addTask {
                    await HostRun(target: target, runner: self, playbook: playbook, steps: steps, progress: progress, coordinator: coordinator, runStarted: clock).run()
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
            seconds: (ContinuousClock.now - clock).seconds, hosts: ordered,
            interrupted: Task.isCancelled || ordered.contains { $0.status == .cancelled })
    }
}

/// One host's run: its session, its steps, their facts and results.
struct HostRun {
    let target: RunTarget
    let runner: PlaybookRunner
    let playbook: Playbook
    let steps: [PlaybookStep]
    let progress: @Sendable (RunEvent) -> Void
    /// Where the hosts meet at rolling groups; nil when the playbook has none.
    var coordinator: RolloutCoordinator? = nil
    /// When the whole run began (the rolling turns are timed from it).
    var runStarted = ContinuousClock.now

    var pendingRecords: PendingHandlers {
        PendingHandlers(stateDirectory: target.stateDirectory ?? runner.options.stateDirectory, playbookFile: playbook.file, handlers: playbook.handlers.map(\.name))
    }

    /// The probe id of the pending-handler records: no step has it.
    static let pendingProbeID = -1

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
        /// The connection went away under the run: the host is unreachable, not failed.
        case unreachable(String)
        /// A rolling group stopped before this host's turn.
        case notStarted(String)
        case cancelled
    }

    var host: String { target.name }

    func run() async -> HostReport {
        let report = await runSteps()
        await coordinator?.ended(host)
        return report
    }

    func runSteps() async -> HostReport {
        let start = ContinuousClock.now
        if Task.isCancelled { return HostReport(host: host, status: .cancelled, error: "interrupted") }
        progress(.connecting(host: host))
        let session: any HostSession
        do {
            session = try await runner.connector(target)
        } catch {
            if Task.isCancelled { return HostReport(host: host, status: .cancelled, error: "interrupted") }
            progress(.unreachable(host: host, message: error.summary))
            var local = false
            if case .localFile = error.kind { local = true }
            return HostReport(
                host: host, status: .unreachable, error: error.summary, seconds: (ContinuousClock.now - start).seconds, localFileProblem: local)
        }
        let connectSeconds = (ContinuousClock.now - start).seconds
        progress(.connected(host: host, seconds: connectSeconds))
        if let key = session.recordedHostKey { progress(.hostKeyRecorded(host: host, key: key)) }
        var state = State(session: session)
        var status = HostStatus.ok
        var failure: String?
        do throws(Stop) {
            // Steps run in segments: a `flush_handlers` step ends one and runs the handlers
            // notified so far; the rest run at the end.
            // A rolling group is a segment of its own, which every host reaches (those it does
            // not name wait there until it is over).
            var segments: [Segment] = [Segment()]
            var count = 0
            for step in steps {
                if step.rollout?.id != segments[segments.count - 1].rollout?.id {
                    segments.append(Segment(rollout: step.rollout))
                }
                guard !PlaybookValidator.targets(of: step, in: [target.facts]).isEmpty else { continue }
                defer { count += 1 }
                if let when = step.when, !target.context.evaluate(when.value) {
                    segments[segments.count - 1].append(Entry(id: count, step: step, handler: false, operation: nil, skip: "condition is false: \(when.value.text)"))
                    continue
                }
                if step.action == .flushHandlers {
                    // Inside a group the handlers run there, within the host's turn.
                    if step.rollout != nil {
                        segments[segments.count - 1].parts.append([])
                    } else {
                        segments.append(Segment())
                    }
                    continue
                }
                segments[segments.count - 1].append(Entry(id: count, step: step, handler: false, operation: try compile(step, state: &state)))
            }
            for (index, segment) in segments.enumerated() {
                if let rollout = segment.rollout {
                    try await roll(segment.parts, in: rollout, state: &state)
                } else {
                    try await execute(segment.parts[0], state: &state)
                    // A handler that a later rolling group notifies (a restart) runs in this
                    // host's turn there, not here, where the host is still in rotation: also
                    // one owed by a run that stopped half-way.
                    let later = segments[(index + 1)...].filter { $0.rollout != nil }.flatMap { $0.parts.joined() }
                    try await runHandlers(state: &state, holding: Set(later.flatMap { notifiedHandlers($0.step) }))
                }
            }
        } catch {
            switch error {
            case .failed(let message):
                status = .failed
                failure = message
            case .unreachable(let message):
                status = .unreachable
                failure = message
            case .notStarted(let message):
                status = .notStarted
                failure = message
            case .cancelled:
                status = .cancelled
                failure = "interrupted"
            }
        }
        await session.close()
        for delegate in state.delegates.values { await delegate.close() }
        if !state.outOfRotation.isEmpty {
            failure = (failure ?? "") + "; \(host) is out of rotation on \(state.outOfRotation.joined(separator: ", ")) until a run that succeeds on it puts it back"
        }
        return HostReport(
            host: host, status: status, error: failure, steps: state.results, connectSeconds: connectSeconds,
            roundTrips: state.roundTrips, probeSeconds: state.probeSeconds, seconds: (ContinuousClock.now - start).seconds,
            pendingHandlers: playbook.handlers.map(\.name).filter(state.recorded.contains), turns: state.turns,
            outOfRotation: state.outOfRotation)
    }

    /// The handlers notified since they last ran, once each, in the order the playbook lists them.
    /// `holding`: handlers left notified for later.
    func runHandlers(state: inout State, holding: Set<String> = []) async throws(Stop) {
        let notified = playbook.handlers.filter { state.notified.contains($0.name) && !holding.contains($0.name) }
        state.notified.formIntersection(holding)
        var entries: [Entry] = []
        for handler in notified {
            if let when = handler.when, !target.context.evaluate(when.value) {
                entries.append(Entry(id: entries.count, step: handler, handler: true, operation: nil, skip: "condition is false: \(when.value.text)"))
                continue
            }
            entries.append(Entry(id: entries.count, step: handler, handler: true, operation: try compile(handler, state: &state, handler: true)))
        }
        try await execute(entries, state: &state)
        try await clearLeftRecords(state: &state)
    }

    /// Records whose handler is done without a command of its own that could remove them (it
    /// found nothing to do, its condition was false, or it runs as a login user who cannot
    /// write the state directory): removed together, as root, in one more command.
    func clearLeftRecords(state: inout State) async throws(Stop) {
        guard !runner.options.check, let line = pendingRecords.clear(state.toClear.sorted()) else { return }
        let handlers = state.toClear
        state.toClear = []
        let result = try await runRecordCommand(line, state: &state)
        guard result.succeeded else {
            throw .failed("the records of handlers that ran could not be removed from \(pendingRecords.directory): \(Self.lastLines(result.stderrText, 3))")
        }
        state.recorded.subtract(handlers)
    }

    /// A command on the pending records as root, for when the step's own command does not run as root.
    func runRecordCommand(_ script: String, state: inout State) async throws(Stop) -> CommandResult {
        state.roundTrips += 1
        do {
            return try await Self.finishing(
                RemoteCommand(arguments: ["sh", "-c", "set -e\n" + script], timeout: .seconds(60), become: target.become), on: state.session, onLine: nil)
        } catch {
            throw .failed("recording pending handlers in \(pendingRecords.directory) failed: \(error.summary)")
        }
    }

    static func lastLines(_ text: String, _ count: Int) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "no error output" : trimmed.split(separator: "\n").suffix(count).joined(separator: " | ")
    }

    /// Runs a command to its end even when the run is cancelled: the first Ctrl-C stops the run
    /// after the commands under way (a command cut half-way is a change whose outcome nobody
    /// knows, and libssh2 1.10 cannot stop the remote side anyway). Only the command's own
    /// timeout, or the connection going away, ends it early.
    static func finishing(
        _ command: RemoteCommand, on session: any HostSession, onLine: (@Sendable (OutputLine) -> Void)?
    ) async throws(SSHError) -> CommandResult {
        // An unstructured task does not inherit the caller's cancellation.
        let task = Task { () async -> Result<CommandResult, SSHError> in
            do throws(SSHError) {
                return .success(try await session.run(command, onLine: onLine))
            } catch {
                return .failure(error)
            }
        }
        return try await task.value.get()
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

    /// Steps run between two handler runs; a rolling group's steps are a segment of their own.
    struct Segment {
        var rollout: Rollout? = nil
        /// The steps, split where a group's flush_handlers runs the handlers notified so far.
        var parts: [[Entry]] = [[]]

        mutating func append(_ entry: Entry) { parts[parts.count - 1].append(entry) }
    }

    struct State {
        var session: any HostSession
        /// Sessions to the hosts a rotation runs on (the load balancers), opened when first needed.
        var delegates: [String: any HostSession] = [:]
        var turns: [RollingTurn] = []
        /// Load balancers this host is out of rotation on right now.
        var outOfRotation: [String] = []
        var results: [StepResult] = []
        var notified: Set<String> = []
        /// Handlers whose record is on the host now (found by the probe or written this run).
        var recorded: Set<String> = []
        /// Handlers found pending and not notified again by a change of this run: their
        /// results say why they run.
        var pendingOnly: Set<String> = []
        /// Whether the run's first probe is done: it takes the lock and looks for the records.
        var pendingRead = false
        /// Records to remove once the handlers of this segment have run.
        var toClear: Set<String> = []
        var roundTrips = 0
        var probeSeconds = 0.0

        mutating func record(_ result: StepResult, progress: @Sendable (RunEvent) -> Void, host: String) {
            results.append(result)
            progress(.stepFinished(host: host, result: result))
        }
    }

    func becomeFor(_ step: PlaybookStep) -> Become? { step.become == true ? target.become : nil }

    /// Probe all, plan in order, apply what differs (re-probing what follows each change).
    /// `looked`: facts of these entries from a probe just made (a rolling group's look before
    /// the turn), instead of probing again.
    func execute(_ entries: [Entry], state: inout State, looked: [Int: Facts]? = nil) async throws(Stop) {
        guard !entries.isEmpty else { return }
        var pending = entries[...]
        var facts: [Int: Facts]
        if let looked {
            facts = looked
        } else {
            facts = try await probe(pending, state: &state, readPending: !state.pendingRead && !(entries.first?.handler ?? true))
        }
        var wouldChange = false
        // After a change only the next `reprobeWindow` steps are looked at again: a run stays
        // linear in its steps (re-probing everything after every change made long first runs
        // quadratic), and the steps past the window get a look of their own when reached.
        var windowed = false
        while let entry = pending.first {
            if Task.isCancelled { throw .cancelled }
            let fromHere = pending
            pending = pending.dropFirst()
            let clock = ContinuousClock.now
            let step = entry.step
            // A handler that runs only because an earlier run left its record says so.
            let reason = entry.handler && state.pendingOnly.contains(step.name) ? [Self.pendingReason] : []
            func result(_ status: StepStatus, message: String? = nil, plan: StepPlan? = nil, output: String? = nil, uncertain: Bool = false) -> StepResult {
                StepResult(
                    name: step.name, type: step.action.typeName, status: status, handler: entry.handler,
                    seconds: (ContinuousClock.now - clock).seconds, message: message, summary: reason + (plan?.summary ?? []),
                    diff: plan?.diff.flatMap { $0.isEmpty ? nil : $0 }, output: output, uncertain: uncertain)
            }
            guard let operation = entry.operation else {
                if entry.handler, state.recorded.contains(step.name) { state.toClear.insert(step.name) }
                state.record(result(.skipped, message: entry.skip), progress: progress, host: host)
                continue
            }
            if facts[entry.id] == nil, windowed, entry.operation != nil {
                facts = try await probe(fromHere.prefix(Self.lookWindow), state: &state)
                windowed = fromHere.count > Self.lookWindow
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
                if entry.handler, state.recorded.contains(step.name) { state.toClear.insert(step.name) }
                state.record(result(.ok), progress: progress, host: host)
                continue
            }
            if runner.options.check {
                // Later steps are planned on facts from before this change, as Ansible's check mode does.
                wouldChange = wouldChange || plan.changes
                state.record(result(plan.changes ? .changed : .ok, plan: plan), progress: progress, host: host)
                if plan.changes { notify(step, state: &state) }
                continue
            }
            progress(.stepStarted(host: host, step: step.name, handler: entry.handler))
            // The records of the handlers this change will owe, written before it is made.
            let owed = plan.changes && !entry.handler ? notifiedHandlers(step).filter { !state.recorded.contains($0) } : []
            let asRoot = becomeFor(step) != nil || target.become == nil
            var records = Records()
            if asRoot {
                records.before = recordLines(owed, step: step)
                // A change that failed is not made (files are replaced atomically; a failed
                // command is not a change), so what it would have owed is not owed.
                records.onFailure = self.pendingRecords.clear(owed)
                if entry.handler, state.recorded.contains(step.name) { records.onSuccess = self.pendingRecords.clear([step.name]) }
            } else {
                // The login user cannot write the state directory: one command as root first.
                if !owed.isEmpty {
                    let written = try await runRecordCommand(recordLines(owed, step: step).joined(separator: "\n"), state: &state)
                    guard written.succeeded else {
                        let message = "could not record its handlers in \(self.pendingRecords.directory) before changing anything: \(Self.lastLines(written.stderrText, 3))"
                        state.record(result(.failed, message: message), progress: progress, host: host)
                        throw .failed("\(step.name): \(message)")
                    }
                    state.recorded.formUnion(owed)
                }
                if entry.handler, state.recorded.contains(step.name) { records.clearLater = true }
            }
            // The steps after a change are looked at again in the same command, unless they
            // need root and this step does not (root sees at least as much, so the other way
            // round is fine).
            let reprobeBecome = becomeFor(pending)
            let combine = plan.changes && (reprobeBecome == nil || reprobeBecome == becomeFor(step))
            let window = pending.prefix(Self.reprobeWindow)
            let outcome = try await apply(plan, entry: entry, records: records, reprobe: combine ? window : [], state: &state)
            if outcome.unknown {
                // The commands were sent; they may have run to the end. The records written
                // first stay on the host, so the handlers still run next time.
                state.recorded.formUnion(owed)
                let why = "\(outcome.failure ?? "the connection was lost") before its commands were seen to end"
                let message = plan.changes ? "may have changed: \(why)" : why
                state.record(result(plan.changes ? .changed : .ok, message: message, plan: plan, uncertain: plan.changes), progress: progress, host: host)
                throw outcome.connectionLost ? .unreachable("\(step.name): \(message)") : .failed("\(step.name): \(message)")
            }
            if let failure = outcome.failure {
                state.record(result(.failed, message: failure, plan: plan, output: outcome.output), progress: progress, host: host)
                throw outcome.connectionLost ? .unreachable("\(step.name): \(failure)") : .failed("\(step.name): \(failure)")
            }
            state.recorded.formUnion(owed)
            if entry.handler, state.recorded.contains(step.name) {
                if records.clearLater { state.toClear.insert(step.name) } else { state.recorded.remove(step.name) }
            }
            state.record(
                result(plan.changes ? .changed : .ok, plan: plan, output: plan.capturesOutput ? outcome.output : nil),
                progress: progress, host: host)
            if plan.changes {
                notify(step, state: &state)
                facts = outcome.reprobed ? outcome.facts : try await probe(window, state: &state)
                windowed = pending.count > window.count
            }
        }
    }

    static let pendingReason = "pending from an earlier run that stopped before its handlers ran"

    /// How many steps after a change are probed again in the change's own command (it rides in
    /// the command line, which is small).
    static let reprobeWindow = 32
    /// How many steps a look of its own covers (on stdin: no size limit, but a bound keeps a
    /// run with a change every few dozen steps linear).
    static let lookWindow = 1024

    /// The handlers a step names that the playbook has (the parser refuses others; a handler
    /// never notifies).
    func notifiedHandlers(_ step: PlaybookStep) -> [String] {
        let names = Set(step.notify.map(\.value))
        return playbook.handlers.map(\.name).filter(names.contains)
    }

    func notify(_ step: PlaybookStep, state: inout State) {
        let names = step.notify.map(\.value)
        state.notified.formUnion(names)
        state.pendingOnly.subtract(names)
    }

    func recordLines(_ handlers: [String], step: PlaybookStep) -> [String] {
        pendingRecords.record(handlers, step: step.name)
    }

    /// Shell lines on the pending records that ride in a step's own command.
    struct Records {
        var before: [String] = []
        var onFailure: String?
        var onSuccess: String?
        /// The handler's record is removed after the handlers, as root (see clearLeftRecords).
        var clearLater = false
    }

    func probe(_ pending: ArraySlice<Entry>, state: inout State, readPending: Bool = false) async throws(Stop) -> [Int: Facts] {
        var steps: [(id: Int, operation: any StepOperation)] = pending.compactMap { entry in entry.operation.map { (entry.id, $0) } }
        let records = PendingProbe(pending: pendingRecords, handlers: playbook.handlers.map(\.name))
        let readsRecords = readPending && !records.handlers.isEmpty
        if readsRecords { steps.append((Self.pendingProbeID, records)) }
        if steps.isEmpty { return [:] }
        let script = ProbeScript(steps: steps)
        // The run's first probe takes the host's lock (see HostLock) before it looks at anything.
        let lock = readPending ? HostLock(
            stateDirectory: target.stateDirectory ?? runner.options.stateDirectory, wait: runner.options.lockWait,
            holder: HostLock.describe(playbook: playbook.file)) : nil
        state.roundTrips += 1
        let started = ContinuousClock.now
        defer { state.probeSeconds += (ContinuousClock.now - started).seconds }
        let result: CommandResult
        do {
            // The script goes on stdin: one command-line argument is limited to 128 KiB on
            // Linux, and a long playbook's probes could pass that.
            // A probe changes nothing, so unlike an apply it may be cut by Ctrl-C (a wait for
            // another run's lock can be long).
            result = try await state.session.run(
                RemoteCommand(
                    arguments: ["sh", "-s"], stdin: Array(((lock?.script ?? "") + script.script).utf8),
                    timeout: .seconds(300 + (lock?.wait ?? 0)), become: becomeFor(pending)),
                onLine: nil)
        } catch {
            if Task.isCancelled { throw .cancelled }
            if error.connectionLost { throw .unreachable("probing the host failed: \(error.summary)") }
            throw .failed("probing the host failed: \(error.summary)")
        }
        if let holder = lock?.holderIfBusy(result.stdoutText) {
            let advice = runner.options.lockWait.map { "nothing was changed after waiting \($0) s for it" } ?? "nothing was changed; run again when it ends, or with --wait"
            throw .failed("another run holds this host's lock \(lock!.path), \(holder); \(advice)")
        }
        let facts = script.parse(result.stdoutText)
        if facts.count < script.stepIDs.count, !result.succeeded {
            // The shell never got going (sudo refused, no sh...): say what the host said.
            let stderr = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            let how = result.exitSignal.map { "was killed by SIG\($0)" } ?? "exited with status \(result.exitStatus)"
            throw .failed("probing the host failed: " + (stderr.isEmpty ? "the shell \(how)" : stderr.split(separator: "\n").suffix(3).joined(separator: " | ")))
        }
        if readPending { state.pendingRead = true }
        if readsRecords {
            let found = facts[Self.pendingProbeID].map { records.found($0) } ?? []
            state.recorded.formUnion(found)
            state.pendingOnly.formUnion(found.filter { !state.notified.contains($0) })
            state.notified.formUnion(found)
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
        /// The command was sent and its end was never seen (connection lost, labctl's own
        /// wait ran out): the change may or may not have been made.
        var unknown = false
        /// The session went away under the command (see `SSHError.connectionLost`).
        var connectionLost = false
    }

    /// The command that applies a plan, before any re-probe. The first line says the command is
    /// running on the host (sudo let it in): from then on, not seeing the end means not knowing
    /// what was changed. The records come next and on their own: `set -e` stops the command
    /// before any change when one cannot be written. The plan runs apart (TiedToSession) so its
    /// `set -e` and EXIT trap stay its own; its status decides what happens to the records and
    /// whether the re-probe runs.
    static func applyScript(_ plan: StepPlan, records: Records, nonce: String) -> String {
        var script = "echo '@@\(nonce) started'\n"
        if !records.before.isEmpty { script += "set -e\n" + records.before.joined(separator: "\n") + "\nset +e\n" }
        script += TiedToSession.run(plan.script)
        // A status above 128 is a plan killed by a signal (the watcher ending it with its
        // session, the OOM killer): it may have changed things half-way, so it keeps its records.
        if let line = records.onFailure { script += "[ \"$s\" -eq 0 ] || [ \"$s\" -gt 128 ] || \(line)\n" }
        if let line = records.onSuccess { script += "[ \"$s\" -ne 0 ] || \(line)\n" }
        script += "printf '\\n@@\(nonce) applied %s\\n' \"$s\"\n[ \"$s\" -eq 0 ] || exit \"$s\"\n"
        return script
    }

    /// libssh2 sends a command line in one SSH packet (32,768 bytes at most): a longer one fails
    /// with "Unable to send channel request" (-34). The limit leaves room for sudo and timeout.
    static let commandLineLimit = 30_000

    static func fitsCommandLine(_ script: String) -> Bool { Shell.quote(script).utf8.count < commandLineLimit }

    /// Applies one plan and, in the same command, probes `reprobe` when the plan succeeded.
    func apply(_ plan: StepPlan, entry: Entry, records: Records, reprobe: ArraySlice<Entry>, state: inout State) async throws(Stop) -> Outcome {
        let probe = ProbeScript(steps: reprobe.compactMap { entry in entry.operation.map { (entry.id, $0) } })
        let marker = "@@\(probe.nonce) applied"
        let started = "@@\(probe.nonce) started"
        var script = Self.applyScript(plan, records: records, nonce: probe.nonce)
        // Stdin carries the step's data, so the re-probe rides in the command line: only while
        // the line fits the one SSH packet libssh2 sends it in; else it is a probe of its own.
        let reprobed = !probe.stepIDs.isEmpty && Self.fitsCommandLine(script + probe.script)
        if reprobed { script += probe.script }
        var command = RemoteCommand(arguments: ["sh", "-c", script], stdin: plan.stdin, timeout: nil, become: becomeFor(entry.step))
        if !Self.fitsCommandLine(script) {
            // A step's own commands too long for a command line (a long `run`): the script comes
            // on stdin, read whole before it runs, so its commands see no script as their input.
            guard plan.stdin.isEmpty else {
                return Outcome(failure: "the step's commands are \(script.utf8.count) bytes and its data travels on stdin; a command line holds at most \(Self.commandLineLimit)", output: nil, facts: [:], unknown: false)
            }
            command = RemoteCommand(arguments: ["sh", "-c", #"s=$(cat) && eval "$s""#], stdin: Array(script.utf8), timeout: nil, become: becomeFor(entry.step))
        }
        let timeout = entry.operation?.applyTimeout
        let step = entry.step.name
        let host = self.host
        let progress = self.progress
        let nonce = probe.nonce
        let pastMarker = Flag()
        state.roundTrips += 1
        let result: CommandResult
        do {
            command.timeout = timeout
            result = try await Self.finishing(
                command,
                on: state.session,
                onLine: { line in
                    if line.stream == .stdout, line.text == started { return }
                    // Lines after the marker belong to the re-probe, not to the step.
                    if line.stream == .stdout, line.text.hasPrefix("@@\(nonce)") { pastMarker.set() }
                    if !pastMarker.isSet { progress(.output(host: host, step: step, line: line)) }
                })
        } catch {
            return Outcome(
                failure: error.summary, output: nil, facts: [:], unknown: error.commandMayHaveRun,
                connectionLost: error.connectionLost)
        }
        var stdout = result.stdoutText
        let ran = stdout.hasPrefix(started + "\n")
        if ran { stdout.removeFirst(started.utf8.count + 1) }
        let split = stdout.range(of: "\n\(marker) ")
        let output = split.map { String(stdout[..<$0.lowerBound]) } ?? stdout
        let trimmedOutput = output.trimmingCharacters(in: .newlines)
        if !result.succeeded || split == nil {
            let stderr = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            let how = result.exitSignal.map { "was killed by SIG\($0)" } ?? "exited with status \(result.exitStatus)"
            let message = stderr.isEmpty ? "the step's commands \(how)" : stderr.split(separator: "\n").suffix(5).joined(separator: "\n")
            // Started and never reached its end (killed, the host-side timeout), or its plan was
            // killed by a signal: part of the change may be made.
            let cut = ran && (split == nil || result.exitStatus > 128 || result.exitSignal != nil)
            return Outcome(failure: cut ? "its commands \(how)" : message, output: trimmedOutput.isEmpty ? nil : trimmedOutput, facts: [:], unknown: cut)
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

extension SSHError {
    /// Whether a command that ended in this error may have run on the host. A reconnection that
    /// failed, or sudo refusing the password (the exchange withholds the command's input until
    /// the command starts), means it never did; any other error came after it was sent.
    var commandMayHaveRun: Bool {
        switch operation {
        case .connect, .handshake, .hostKey, .authenticate: return false
        case .exec, .upload: break
        }
        switch kind {
        case .becomePasswordRefused, .becomePromptUnrecognised, .nameNotResolved, .connectionRefused: return false
        default: return true
        }
    }
}
