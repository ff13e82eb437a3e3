import ArgumentParser
import Foundation
import LabEngine
import LabSpec
import Rainbow
import SSH
import Synchronization
import LabVerify

/// Options every playbook verb shares (run, provision, deploy, up).
struct PlaybookRunOptions: ParsableArguments {
    @Flag(name: [.customShort("C"), .long], help: "Report what would change and change nothing.")
    var check = false

    @Flag(name: [.customShort("D"), .long], help: "Show a unified diff of every file that changes (or would, with --check).")
    var diff = false

    @Option(name: [.customShort("l"), .long], help: ArgumentHelp("Only these hosts or roles (comma list).", valueName: "hosts"))
    var limit: String?

    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Only steps with one of these tags (comma list).", valueName: "tags"))
    var tags: String?

    @Option(help: ArgumentHelp("Leave out the steps with one of these tags (comma list).", valueName: "tags"))
    var skipTags: String?

    @Option(help: ArgumentHelp("Skip the steps before the one with this name.", valueName: "step"))
    var startAt: String?

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("Hosts worked on at once.", valueName: "n"))
    var forks = 50

    /// --json: the run's RunReport (labctl up: one UpReport with each stage's part).
    @OptionGroup var output: JSONOutputOptions

    @Option(help: ArgumentHelp("The folder of the playbooks (default: playbooks/ beside the inventory, else ./playbooks).", valueName: "dir"))
    var playbooks: String?

    @Flag(name: .customLong("vv"), help: "Show every output line of every command.")
    var veryVerbose = false

    @Flag(help: "When another labctl run is working on a host, wait for it to end (up to an hour) instead of stopping at once.")
    var wait = false

    @Option(help: ArgumentHelp(
        "Where labctl keeps its state on each host: the lock of the run working on it, the handlers a cut run still owes (pending/).",
        valueName: "dir"))
    var stateDir = "/var/lib/labctl"

    func validate() throws {
        if !(1...1000).contains(forks) { throw ValidationError("--forks must be between 1 and 1000 hosts at once; got \(forks)") }
        if let limit, limit.split(separator: ",").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--limit is empty; give hosts or roles (a comma list), or leave --limit out to run on every host")
        }
        if let tags, tags.split(separator: ",").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--tags is empty; give one or more tags (a comma list), or leave --tags out to run every step")
        }
        if let skipTags, skipTags.split(separator: ",").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--skip-tags is empty; give one or more tags (a comma list), or leave --skip-tags out")
        }
        if let startAt, startAt.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--start-at is empty; give the name of a step")
        }
        if let problem = ValueForm.plainAbsolutePath.problem(stateDir) { throw ValidationError("--state-dir: \(problem)") }
    }

    /// --limit and --tags checked against the inventory and the playbook: a name that matches
    /// nothing is a typo, not a run that does nothing.
    func checkSelection(inventory: Inventory, playbook: Playbook, path: String) throws {
        if let limit {
            do {
                _ = try inventory.select(limit)
            } catch {
                Terminal.error("--limit: \(error.description)")
                throw LabctlExit.badInput.error
            }
        }
        for (option, value) in [("--tags", tags), ("--skip-tags", skipTags)] {
            guard let value else { continue }
            let wanted = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let known = Set((playbook.steps + playbook.handlers).flatMap(\.tags))
            let unknown = wanted.filter { !known.contains($0) }
            if !unknown.isEmpty {
                let list = known.isEmpty ? "it has no tags" : "its tags: \(known.sorted().joined(separator: ", "))"
                Terminal.error("\(option) \(unknown.joined(separator: ",")): no step of \(path) has \(unknown.count == 1 ? "this tag" : "these tags"); \(list)")
                throw LabctlExit.badInput.error
            }
        }
    }

    func playbookDirectory(for inventory: Inventory) -> String {
        if let playbooks { return URL(fileURLWithPath: playbooks).standardizedFileURL.path }
        let beside = inventory.baseDirectory.appendingPathComponent("playbooks").path
        if FileManager.default.fileExists(atPath: beside) { return beside }
        return URL(fileURLWithPath: "playbooks").standardizedFileURL.path
    }

    func runOptions(playbookDirectory: String) -> RunOptions {
        RunOptions(
            playbookDirectory: playbookDirectory, check: check, diff: diff,
            limit: limit.map { $0.split(separator: ",").map(String.init) },
            tags: tags.map { $0.split(separator: ",").map(String.init) } ?? [],
            skipTags: skipTags.map { $0.split(separator: ",").map(String.init) } ?? [],
            startAt: startAt, forks: forks, stateDirectory: stateDir, lockWait: wait ? 3600 : nil)
    }
}

/// Parses, validates and runs one playbook with live progress and a recap; returns its report.
enum PlaybookInvocation {
    /// - writesJSON: false where the caller puts the report into a document of its own (up).
    static func run(
        _ name: String, inventory: Inventory, options: PlaybookRunOptions, connection: ConnectionOptions, verbosity: Int,
        writesJSON: Bool = true
    ) async throws -> RunReport {
        let verbose = verbosity > 0
        let directory = options.playbookDirectory(for: inventory)
        var path = name
        if !name.contains("/") {
            path = directory + "/" + (name.hasSuffix(".yml") || name.hasSuffix(".yaml") ? name : name + ".yml")
            if !FileManager.default.fileExists(atPath: path) {
                let here = [name, name + ".yml"].first { FileManager.default.fileExists(atPath: $0) }
                    .map { "; ./\($0) exists here: write ./\($0) to run that file" } ?? ""
                let shipped = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                    .filter { $0.hasSuffix(".yml") }.map { String($0.dropLast(4)) }.sorted()
                let known = shipped.isEmpty ? "" : " (playbooks there: \(shipped.joined(separator: ", ")))"
                Terminal.error("\(name): no playbook of that name in \(directory)\(known)\(here); a path with a '/' (./\(name)) is read as a file")
                throw LabctlExit.badInput.error
            }
        }
        let playbook: Playbook
        do {
            playbook = try PlaybookParser.parse(fileAt: path)
        } catch {
            Terminal.error(error.description)
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
        try options.checkSelection(inventory: inventory, playbook: playbook, path: path)
        if let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("app.source") {
            let problems = inventory.localPathProblems()
            if !problems.isEmpty {
                Terminal.error(InventoryError(file: inventory.file?.path ?? InventoryLoader.defaultPath, reason: .invalid, problems: problems).description)
                throw LabctlExit.badInput.error
            }
        }
        let secrets = connection.secrets(for: inventory, verbosity: verbosity)
        let runner = PlaybookRunner(
            targets: InventoryContext.targets(inventory, secrets: secrets),
            options: options.runOptions(playbookDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path))
        let problems = runner.validate(playbook)
        if !problems.isEmpty {
            Terminal.error(PlaybookError(issues: problems).description)
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
        let title = URL(fileURLWithPath: path).lastPathComponent
        Terminal.line("PLAY \(title)\(options.check ? " (check mode: nothing will be changed)" : "")".bold)
        let printer = ProgressPrinter(verbose: verbose, veryVerbose: options.veryVerbose || verbosity >= 2, diff: options.diff)
        let statusLine = Terminal.isInteractive
            ? StatusLine(RunningSteps()) { steps, now, width, frame in steps.line(now: now, width: width, frame: frame) } : nil
        let report = await Interrupt.cancellingOnSIGINT {
            await runner.run(playbook) { event in
                statusLine?.update { $0.record(event, at: .now) }
                printer.show(event)
            }
        }
        await statusLine?.stop()
        Terminal.line("")
        Terminal.line(Recap.render(report))
        // Said again under the recap, where a user who scrolled past the step looks first.
        if report.hosts.contains(where: { host in
            BecomeHint.applies(to: (host.error ?? "") + host.steps.map { ($0.message ?? "") + ($0.output ?? "") }.joined())
        }) {
            Terminal.line(BecomeHint.text.red)
        }
        if report.hosts.contains(where: { $0.status == .unreachable }), let file = inventory.file?.path,
            let hint = await LabCommand.notRunningHint(inventoryPath: file)
        {
            Terminal.line(hint.red)
        }
        // A rollout stopped by a server that did not come up: what to do next, as commands.
        let outOfRotation = report.hosts.filter { !$0.outOfRotation.isEmpty }.map(\.host)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if title == "deploy.yml", !outOfRotation.isEmpty, FileManager.default.fileExists(atPath: folder + "/rollback.yml") {
            var arguments = ""
            if let file = inventory.file?.path, !InventoryLoader.isDefaultPath(file) {
                arguments += " -i " + ShellQuoting.quote(file)
            }
            if options.playbooks != nil { arguments += " --playbooks " + ShellQuoting.quote(folder) }
            let servers = outOfRotation.joined(separator: ", ")
            Terminal.line(("\(servers) \(outOfRotation.count == 1 ? "is" : "are") out of rotation and the other servers keep serving: "
                + "fix what stopped \(outOfRotation.count == 1 ? "it" : "them") (the log lines above) and run `labctl deploy\(arguments)` again, "
                + "or put the previous release back with `labctl rollback\(arguments)`").red)
        }
        if writesJSON { options.output.write(report) }
        return report
    }
}

/// The status line under the progress on a terminal (which host is in which long step; which
/// check verify runs and how long its wait has left), with a spinner, redrawn ten times a
/// second from a model that says what the line is. Written here rather than taken from
/// console-kit: its ActivityIndicator owns the console's last line for one title and cannot let
/// other lines print above it while it spins, which hosts reporting results in parallel need.
final class StatusLine<Model: Sendable>: Sendable {
    private let state: Mutex<(model: Model, frame: Int)>
    private let render: @Sendable (Model, ContinuousClock.Instant, Int, Int) -> String?
    private let ticker = Mutex<Task<Void, Never>?>(nil)

    /// `render(model, now, width, frame)`: the line, or nil for none.
    init(_ model: Model, render: @escaping @Sendable (Model, ContinuousClock.Instant, Int, Int) -> String?) {
        state = Mutex((model, 0))
        self.render = render
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                self.redraw(advancing: true)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        ticker.withLock { $0 = task }
    }

    /// Changes the model and, when that changed the line (`change` returns true), redraws at
    /// once, so a finished step leaves the line before its result is printed above it.
    func update(_ change: (inout Model) -> Bool) {
        if state.withLock({ change(&$0.model) }) { redraw(advancing: false) }
    }

    private func redraw(advancing: Bool) {
        let line = state.withLock { state in
            if advancing { state.frame += 1 }
            return render(state.model, .now, Terminal.width, state.frame)
        }
        Terminal.status(line)
    }

    /// Stops redrawing (waiting for a redraw under way) and removes the line.
    func stop() async {
        let task = ticker.withLock { $0 }
        task?.cancel()
        await task?.value
        Terminal.status(nil)
    }
}

/// One line per step result as it happens, coloured like the recap.
struct ProgressPrinter: Sendable {
    let verbose: Bool
    let veryVerbose: Bool
    let diff: Bool

    func show(_ event: RunEvent) {
        switch event {
        case .connecting:
            break
        case .connected(let host, let seconds):
            if verbose { Terminal.line("\(host.cyan): connected in \(String(format: "%.0f ms", seconds * 1000))") }
        case .hostKeyRecorded(let host, let key):
            Terminal.line("\(host.cyan): its host key was recorded in known_hosts (\(key))".yellow)
        case .unreachable(let host, let message):
            Terminal.line("\(host.cyan): " + "UNREACHABLE".red.bold + " \(message)")
            if BecomeHint.applies(to: message) { Terminal.line("    \(BecomeHint.text)".red) }
        case .stepStarted(let host, let step, _):
            if verbose { Terminal.line("\(host.cyan): … \(step)".dim) }
        case .stepFinished(let host, let result):
            show(result, on: host)
        case .output(let host, let step, let line):
            if veryVerbose { Terminal.line("\(host.cyan): \(step) \(line.stream == .stderr ? "!" : "|") \(line.text)".dim) }
        case .hostFinished:
            break
        }
    }

    private func show(_ result: StepResult, on host: String) {
        let seconds = String(format: "%.2fs", result.seconds)
        let name = (result.handler ? "handler: " : "") + result.name
        switch result.status {
        case .ok:
            if verbose { Terminal.line("\(host.cyan): " + "ok".green + "       \(name) (\(seconds))") }
        case .changed where result.uncertain:
            Terminal.line("\(host.cyan): " + "changed?".yellow.bold + " \(name) (\(seconds))")
            if let message = result.message { Terminal.line("    \(message)".yellow) }
        case .changed:
            Terminal.line("\(host.cyan): " + "changed".yellow + "  \(name) (\(seconds))")
            for line in result.summary { Terminal.line("    \(line)".yellow) }
            if diff, let text = result.diff { Terminal.line(DiffStyle.colour(text)) }
        case .failed:
            Terminal.line("\(host.cyan): " + "FAILED".red.bold + "   \(name) (\(seconds))")
            if let message = result.message { Terminal.line("    \(message)".red) }
            if BecomeHint.applies(to: (result.message ?? "") + (result.output ?? "")) { Terminal.line("    \(BecomeHint.text)".red) }
            if let output = result.output, !output.isEmpty, verbose { Terminal.line(output) }
        case .skipped:
            if verbose { Terminal.line("\(host.cyan): " + "skipped".dim + "  \(name)" + (result.message.map { " (\($0))" } ?? "")) }
        }
    }
}

enum DiffStyle {
    static func colour(_ diff: String) -> String {
        diff.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("+++") || line.hasPrefix("---") { return String(line).bold }
            if line.hasPrefix("+") { return String(line).green }
            if line.hasPrefix("-") { return String(line).red }
            if line.hasPrefix("@@") { return String(line).cyan }
            return String(line)
        }.joined(separator: "\n")
    }
}

/// Ctrl-C cancels the run: the runner stops at the next command boundary (atomic writes mean
/// no host is left with a half-written file), closes its sessions, and the recap still prints.
enum Interrupt {
    /// - allowForcedExit: whether a second Ctrl-C quits at once. Off where the cleanup itself
    ///   matters (the failover drill starting a stopped app again).
    static func cancellingOnSIGINT<T: Sendable>(allowForcedExit: Bool = true, _ body: @escaping @Sendable () async -> T) async -> T {
        signal(SIGINT, SIG_IGN)
        let task = Task { await body() }
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            Interrupt.markInterrupted()
            Terminal.warning(allowForcedExit
                ? "interrupted: stopping after the commands under way; press Ctrl-C again to quit at once (what they still run on the hosts is stopped then, and the handlers they owe run on the next run)"
                : "interrupted: putting the lab back as it was first (an app stopped by the drill is started again)")
            task.cancel()
            source.setEventHandler {
                if allowForcedExit { exit(130) }
                Terminal.warning("still putting the lab back; labctl ends as soon as that is done")
            }
        }
        source.resume()
        let result = await task.value
        source.cancel()
        signal(SIGINT, SIG_DFL)
        return result
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a playbook on the inventory's hosts.",
        discussion: """
            A playbook is a YAML list of steps, each of one type:
            \(StepTypeSpec.helpList)
            Each step looks at the host first and changes only what differs, so a second
            run changes nothing. The arguments of each type: docs/playbooks.md.

            Examples:
              labctl run playbooks/provision.yml --check --diff
              labctl run deploy --limit app1 -v
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var runOptions: PlaybookRunOptions

    @Argument(help: "A playbook file, or the name of one in the playbooks folder.")
    var playbook: String

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let report = try await PlaybookInvocation.run(
            playbook, inventory: inventory, options: runOptions, connection: connection, verbosity: inventoryOptions.verbosity)
        try LabctlExit(report.exitCode).exitIfFailed()
    }
}

/// A verb that runs one of the shipped playbooks by name.
protocol NamedPlaybookCommand: AsyncParsableCommand {
    static var playbookName: String { get }
    var inventoryOptions: InventoryOptions { get }
    var connection: ConnectionOptions { get }
    var runOptions: PlaybookRunOptions { get }
}

extension NamedPlaybookCommand {
    func run() async throws {
        let inventory = try inventoryOptions.load()
        let report = try await PlaybookInvocation.run(
            Self.playbookName, inventory: inventory, options: runOptions, connection: connection,
            verbosity: inventoryOptions.verbosity)
        try LabctlExit(report.exitCode).exitIfFailed()
    }
}

struct Provision: NamedPlaybookCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prepare every host: base packages, hosts file, nginx on the proxy, Node on the app servers.",
        discussion: "Runs playbooks/provision.yml. Safe to run again: a second run changes nothing.")
    static let playbookName = "provision"

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var runOptions: PlaybookRunOptions
}

struct Deploy: NamedPlaybookCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy the app on the app servers and the reverse proxy / load balancer on the proxy.",
        discussion: """
            Runs playbooks/deploy.yml: the app as a systemd service on every app
            server, nginx's config for the lab's domain on the proxy (checked with
            `nginx -t` before it goes live; nginx reloads only when it changed).
            """)
    static let playbookName = "deploy"

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var runOptions: PlaybookRunOptions
}

struct Rollback: NamedPlaybookCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put every app server back on the release it ran before the last deploy, one server at a time.",
        discussion: """
            Runs playbooks/rollback.yml. Each app server keeps its last releases
            (deploy's releases/ folder): the previous healthy one goes live again
            while nginx sends the site to the other servers, as deploy rolls.
            Nothing is uploaded or installed. A second rollback changes nothing;
            `labctl deploy` moves forward again.
            """)
    static let playbookName = "rollback"

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var runOptions: PlaybookRunOptions
}

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "The whole lab: provision, deploy, then verify with a failover drill.",
        discussion: """
            Runs `labctl provision`, `labctl deploy` and `labctl verify --failover` on
            the inventory's hosts, stopping after the first that fails. Run it again
            at any time: a lab that is in place is left unchanged and verified again.
            On the local lab:
              sudo labctl lab up && labctl up
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var runOptions: PlaybookRunOptions
    @OptionGroup var verifyOptions: VerifyRunOptions

    @Flag(help: "Skip the failover drill (the other checks still run).")
    var noFailover = false

    @Flag(help: "Skip verify altogether (provision and deploy only).")
    var noVerify = false

    func validate() throws {
        if !noVerify { try VerifyRunOptions.check(junit: verifyOptions.junit) }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        if !noVerify && !runOptions.check { try VerifyInvocation.checkInventory(inventory, inventoryPath: inventoryOptions.inventory) }
        // --json: one document with each stage that ran, written also when a stage fails.
        var document = UpReport()
        for playbook in ["provision", "deploy"] {
            let report = try await PlaybookInvocation.run(
                playbook, inventory: inventory, options: runOptions, connection: connection, verbosity: inventoryOptions.verbosity,
                writesJSON: false)
            if playbook == "provision" { document.provision = report } else { document.deploy = report }
            if report.exitCode != .ok || Interrupt.wasInterrupted { runOptions.output.write(document) }
            try LabctlExit(report.exitCode).exitIfFailed()
            Terminal.line("")
        }
        if !noVerify && !runOptions.check {
            Terminal.line("VERIFY".bold)
            let report = try await VerifyInvocation.run(
                inventory: inventory, failover: !noFailover, options: verifyOptions, connection: connection,
                verbosity: inventoryOptions.verbosity)
            document.verify = report
            runOptions.output.write(document)
            try VerifyInvocation.exitCode(report).exitIfFailed()
            Terminal.line("")
        } else {
            runOptions.output.write(document)
        }
        if let domain = inventory.domain, let proxy = inventory.proxyHosts.first {
            var inventoryArgument = ""
            if let file = inventory.file?.path, !InventoryLoader.isDefaultPath(file) {
                inventoryArgument = " -i " + ShellQuoting.quote(file)
            }
            if runOptions.check {
                Terminal.line("Checked: the runs above say what provision and deploy would change; nothing was changed.".bold)
            } else if noVerify {
                // Nothing proved it: say what was done, and how to prove it.
                Terminal.line("Provisioned and deployed: http://\(domain)/ (the proxy is \(proxy.address)); not verified: labctl verify\(inventoryArgument)".bold)
            } else {
                Terminal.line("The lab is up and verified: http://\(domain)/ (the proxy is \(proxy.address)).".green.bold)
            }
            if !runOptions.check {
                Terminal.line("To open it in a browser on this computer, map the domain to the proxy: sudo labctl hosts\(inventoryArgument) --apply")
            }
        }
    }
}
