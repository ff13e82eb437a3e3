import ArgumentParser
import Foundation
import LabEngine
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

    func validate() throws {
        if requests < 1 { throw ValidationError("--requests must be at least 1") }
        if let load, load <= 0 { throw ValidationError("--load must be a positive rate") }
    }
}

enum VerifyInvocation {
    /// Runs the checks with live progress, prints the table (or JSON), writes JUnit if asked.
    static func run(
        inventory: Inventory, failover: Bool, options: VerifyRunOptions, connection: ConnectionOptions, json: Bool
    ) async throws -> VerifyReport {
        let secrets = connection.secrets(for: inventory)
        let runner = SSHHostCommandRunner(
            inventory: inventory, options: { InventoryContext.sshOptions($0, inventory, secrets: secrets) },
            become: { secrets.become(for: $0) })
        let verifier = Verifier(
            inventory: inventory,
            options: VerifyOptions(failover: failover, loadRate: options.load, requests: options.requests),
            commandRunner: runner)
        // A second Ctrl-C must not end labctl while the drill puts a stopped app back.
        let report = await Interrupt.cancellingOnSIGINT(allowForcedExit: false) {
            await verifier.run { event in
                guard !json else { return }
                switch event {
                case .started(_, let name): Terminal.line("… \(name)".dim)
                case .note(let text): Terminal.line("  \(text)".dim)
                case .finished: break
                }
            }
        }
        await runner.close()
        if json {
            Terminal.line(String(decoding: try report.json(), as: UTF8.self))
        } else {
            Terminal.line("")
            Terminal.line(report.table { status, word in
                switch status {
                case .pass: return word.green
                case .fail: return word.red.bold
                case .info, .skipped: return word.yellow
                }
            })
        }
        if let junit = options.junit {
            do {
                try report.junitXML().write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                Terminal.warning("could not write \(junit): \(error.localizedDescription)")
            }
        }
        return report
    }

    /// Verify's exit status in labctl's terms: a failed check is a failure on a host (2).
    static func exitCode(_ report: VerifyReport) -> Int32 {
        switch report.exitCode {
        case 0: return 0
        case 130: return 130
        default: return RunExitCode.hostFailed.rawValue
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prove the lab works: the app, nginx, the domain, load balancing, failover.",
        discussion: """
            Checks, each reported pass or fail with its evidence:
              1. every app server answers on the app's port with the app's page
              2. nginx on the proxy is active, `nginx -t` passes, the lab's config is included
              3. the domain resolves as your computer would (reported, not required)
              4. http://<domain>/ through the proxy answers 200 with the app's page
              5. N requests through the proxy reach every app server (the share of each)
              6. with --failover: each app server in turn is stopped, N requests must all
                 succeed from the others, then it is started again (also on Ctrl-C)
              7. with --load R: R requests per second during the drill; errors, p50/p95/p99
            HTTP goes to the proxy's address with the domain as Host, so it does not depend
            on your hosts file. Exits 2 if a check failed.

            Examples:
              labctl verify
              labctl verify --failover --load 50 --junit verify.xml
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var verifyOptions: VerifyRunOptions

    @Flag(help: "Drill a failover: stop each app server in turn and check that the site stays up.")
    var failover = false

    @Flag(help: "Print the report as JSON instead of a table.")
    var json = false

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let report = try await VerifyInvocation.run(
            inventory: inventory, failover: failover, options: verifyOptions, connection: connection, json: json)
        let code = VerifyInvocation.exitCode(report)
        if code != 0 { throw ExitCode(code) }
    }
}
