import ArgumentParser
import Foundation
import LabEngine
import LabLocal
import LabSpec
import LabVerify
import Rainbow

/// What `labctl verify` and `labctl up` share.
struct VerifyRunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Requests for the load-balancing check, and per server in the drill.", valueName: "n"))
    var requests = 50

    @Option(help: ArgumentHelp("Keep this many requests per second on the domain during the failover drill, and report errors and latency.", valueName: "rate"))
    var load: Double?

    @Option(help: ArgumentHelp("Write the report as JUnit XML to this file (for CI).", valueName: "file"))
    var junit: String?

    @Option(help: ArgumentHelp("Write the report as one self-contained HTML file (checks, evidence, the drill's chart) to hand in or project.", valueName: "file"))
    var html: String?

    @Option(help: ArgumentHelp(
        "How the drill takes an app server down: auto (its systemd unit where the app runs as one, else a firewall rule), service, firewall (cuts the app's port off on the app host, however the app runs), or poweroff (a local lab's host powered off and on again; needs root).",
        valueName: "how"))
    var stopBy: DrillStopMethod = .auto

    @Option(help: ArgumentHelp("The app's systemd unit for the drill (default: the app's name); implies --stop-by service.", valueName: "unit"))
    var service: String?

    /// Fewer requests cannot show that every app server gets a share; more is a load test.
    static let requestRange = 10...10_000
    /// Requests per second during the drill: a steady trickle up to what one client sends.
    static let loadRange = 0.1...1000.0

    func validate() throws {
        if !Self.requestRange.contains(requests) {
            throw ValidationError("--requests must be between \(Self.requestRange.lowerBound) and \(Self.requestRange.upperBound); got \(requests) (fewer cannot show each app server's share)")
        }
        if let load, !(load.isFinite && Self.loadRange.contains(load)) {
            throw ValidationError("--load must be a rate between 0.1 and 1000 requests per second; got \(load)")
        }
        try Self.check(junit: junit)
        try OutputPath.validate(html, option: "--html")
        if let service {
            if let problem = ValueForm.unitName.problem(service) { throw ValidationError("--service: \(problem)") }
            if stopBy == .firewall || stopBy == .poweroff {
                throw ValidationError("--service names a unit for the drill to stop; it does not go with --stop-by \(stopBy.rawValue)")
            }
        }
    }

    /// --service alone means the drill stops that unit.
    var drillStopMethod: DrillStopMethod { service != nil && stopBy == .auto ? .service : stopBy }

    static func check(junit: String?) throws {
        try OutputPath.validate(junit, option: "--junit")
    }
}

enum VerifyInvocation {
    /// `--stop-by poweroff`: the drill powers app hosts off through the lab's backend, so the
    /// inventory must be a local lab's and labctl root. Exits 4 naming what is missing.
    static func powerCut(_ inventory: Inventory) throws -> PowerCutController {
        let path = inventory.file?.path ?? "the inventory"
        guard inventory.isLocalLab else {
            Terminal.error("--stop-by poweroff powers a local lab's hosts off, and \(path) describes real machines (hosts outside lab.subnet); use --stop-by firewall or service for them")
            throw LabctlExit.badInput.error
        }
        guard geteuid() == 0 else {
            Terminal.error("--stop-by poweroff powers lab hosts off and on, which needs root; run it again with sudo")
            throw LabctlExit.badInput.error
        }
        let backend: any LabBackend
        do {
            backend = LabBackends.make(try LabDefinition(inventory: inventory))
        } catch {
            throw LabCommand.failure(error)
        }
        return PowerCutController(
            powerOff: { host throws in try await backend.powerOff(host: host) },
            powerOn: { host throws in try await backend.powerOn(host: host) })
    }

    /// What verify needs from the inventory, checked before any host is asked: an `app`
    /// section, app servers and a proxy. Exits 4 (bad input) naming what is missing.
    static func checkInventory(_ inventory: Inventory, inventoryPath: String) throws {
        var missing: [String] = []
        if inventory.app == nil { missing.append("an `app` section (the app's name, port and source; see docs/inventory.md)") }
        if inventory.appHosts.isEmpty { missing.append("a host with the role `app`") }
        if inventory.proxyHosts.isEmpty { missing.append("a host with the role `proxy`") }
        if inventory.domain == nil { missing.append("a `domain`") }
        guard missing.isEmpty else {
            Terminal.error("\(inventoryPath): verify needs \(missing.joined(separator: ", ")); add \(missing.count == 1 ? "it" : "them") to the inventory")
            throw LabctlExit.badInput.error
        }
    }

    /// Runs the checks with live progress, prints the table, writes JUnit if asked (the caller
    /// writes --json: verify its report, up the whole run's).
    static func run(
        inventory: Inventory, failover: Bool, options: VerifyRunOptions, connection: ConnectionOptions, verbosity: Int
    ) async throws -> VerifyReport {
        if options.requests < 2 * inventory.appHosts.count {
            Terminal.error("--requests \(options.requests) is too few for \(inventory.appHosts.count) app servers; give at least \(2 * inventory.appHosts.count) so each can show its share")
            throw LabctlExit.badInput.error
        }
        let secrets = connection.secrets(for: inventory, verbosity: verbosity)
        let runner = SSHHostCommandRunner(
            inventory: inventory, options: { InventoryContext.sshOptions($0, inventory, secrets: secrets) },
            become: { secrets.become(for: $0) })
        let verifier = Verifier(
            inventory: inventory,
            options: VerifyOptions(
                failover: failover, loadRate: options.load, requests: options.requests, serviceUnit: options.service,
                stopBy: options.drillStopMethod, hints: LabctlHints(inventoryFile: inventory.file?.path)),
            commandRunner: runner,
            serviceController: failover && options.drillStopMethod == .poweroff ? try powerCut(inventory) : nil)
        let statusLine = Terminal.isInteractive
            ? StatusLine(VerifyStatus()) { status, now, width, frame in status.line(now: now, width: width, frame: frame) } : nil
        // A second Ctrl-C must not end labctl while the drill puts a stopped app back.
        let report = await Interrupt.cancellingOnSIGINT(allowForcedExit: false) {
            await verifier.run { event in
                statusLine?.update { $0.record(event, at: .now) }
                switch event {
                case .started(_, let name): Terminal.line("… \(name)".dim)
                case .note(let text): Terminal.line("  \(text)".dim)
                case .waiting(let text, let seconds): Terminal.line("  \(text) (\(String(format: "%.1f", seconds)) s)".dim)
                case .finished: break
                }
            }
        }
        await statusLine?.stop()
        await runner.close()
        Terminal.line("")
        Terminal.line(report.table(width: Terminal.width) { status, word in
            switch status {
            case .pass: return word.green
            case .fail: return word.red.bold
            case .info, .skipped: return word.yellow
            }
        })
        if !report.failures.isEmpty, let file = inventory.file?.path, let hint = await LabCommand.notRunningHint(inventoryPath: file) {
            Terminal.line(hint.red)
        }
        for (path, text) in [(options.junit, { report.junitXML() }), (options.html, { report.html() })] {
            guard let path else { continue }
            do {
                try text().write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                Terminal.warning("could not write \(path): \(OutputPath.reason(error))")
            }
        }
        return report
    }

    /// Verify's exit status in labctl's terms: a failed check is a failure on a host (2),
    /// Ctrl-C is 130 (also when the drill it stopped failed a check).
    static func exitCode(_ report: VerifyReport) -> LabctlExit {
        if report.interrupted { return .interrupted }
        return report.exitCode == 0 ? .success : .hostFailed
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove the lab works: the app, nginx, the domain, load balancing, failover.",
        discussion: """
            Checks, each reported pass or fail with its evidence:
            \(VerifyCheck.helpList)
            HTTP goes to the proxy's address with the domain as Host, so it does not depend
            on your hosts file. Exits 2 if a check failed, 4 if the inventory has no
            app, app servers, proxy or domain, 130 on Ctrl-C.

            Examples:
              labctl verify
              labctl verify --failover --load 50 --junit verify.xml
              labctl verify --failover --stop-by firewall
              labctl verify --failover --load 20 --html report.html
              labctl verify --json -   # JSON on stdout, the table on stderr
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var verifyOptions: VerifyRunOptions

    @Flag(help: "Drill a failover: stop each app server in turn and check that the site stays up.")
    var failover = false

    /// --json: the VerifyReport.
    @OptionGroup var output: JSONOutputOptions

    func run() async throws {
        let inventory = try inventoryOptions.load()
        try VerifyInvocation.checkInventory(inventory, inventoryPath: inventoryOptions.inventory)
        let report = try await VerifyInvocation.run(
            inventory: inventory, failover: failover, options: verifyOptions, connection: connection,
            verbosity: inventoryOptions.verbosity)
        output.write(report)
        try VerifyInvocation.exitCode(report).exitIfFailed()
    }
}
