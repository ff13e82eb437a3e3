import ArgumentParser
import Foundation
import LabEngine
import Rainbow
import LabSpec
import SSH

struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a shell command on one host, a role, or all hosts.",
        discussion: """
            The command runs on every chosen host at once over SSH. Each output line
            is shown as it arrives with the host's name in front (stderr lines are
            marked with !). At the end, one line per host with its exit status.
            Exits 2 if the command failed on any host, 3 if a host was unreachable.

            Examples:
              labctl exec all -- uptime
              labctl exec app -- systemctl status wayshub --no-pager
              labctl exec proxy --become -- nginx -t
              labctl exec all --json - -- uptime   # each host's output as JSON
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions

    @Flag(name: [.short, .long], help: "Run as root with sudo on hosts whose login user is not root.")
    var become = false

    @Option(help: ArgumentHelp("Stop the command after this many seconds (enforced on the host).", valueName: "seconds"))
    var timeout: Int?

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("Hosts worked on at once (1-1000).", valueName: "n"))
    var forks = 50

    /// --json: an ExecReport.
    @OptionGroup var output: JSONOutputOptions

    @Argument(help: "Where to run: all, a host name, a role, or a comma list of them.")
    var target: String

    @Argument(parsing: .postTerminator, help: "The command, after `--`.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("Give the command after `--`, e.g. labctl exec all -- uptime") }
        if !(1...1000).contains(forks) { throw ValidationError("--forks must be between 1 and 1000 hosts at once; got \(forks)") }
        if let timeout, !PlaybookLimits.timeoutSeconds.contains(timeout) {
            throw ValidationError("--timeout must be between 1 and 86400 seconds (one day); got \(timeout)")
        }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let targets = try Targets.select(target, in: inventory, secrets: connection.secrets(for: inventory, verbosity: inventoryOptions.verbosity))
        let width = targets.map(\.name.count).max() ?? 0
        // One word is taken as a shell command line as it is (`exec all -- 'a | b'`); several words
        // are the argv of one command, quoted so the remote shell sees them unchanged.
        let line = command.count == 1 ? command[0] : command.map(ShellQuoting.quote).joined(separator: " ")
        let results = await AdHoc.exec(
            targets, command: line, become: become, timeout: timeout.map { .seconds($0) }, forks: forks
        ) { host, printed in
            let name = host.padding(toLength: width, withPad: " ", startingAt: 0)
            let mark = printed.stream == .stderr ? "!" : "|"
            Terminal.line("\(name.cyan) \(mark) \(printed.text)")
        }
        output.write(ExecReport(command: line, become: become, results: results))
        var rows = [["HOST", "RESULT"]]
        for outcome in results {
            if let error = outcome.error {
                rows.append([outcome.host, (error.isUnreachable ? "UNREACHABLE: " : "FAILED: ") + (inventoryOptions.verbose ? error.description : error.summary)])
            } else if let result = outcome.result {
                var how = result.exitSignal.map { "killed by SIG\($0)" } ?? "exit \(result.exitStatus)"
                // `timeout` on the host ends the command with 124 when --timeout passes.
                if let timeout, result.exitStatus == 124, result.exitSignal == nil { how = "timed out after \(timeout) s (--timeout), exit 124" }
                var hint = result.sudoNeedsPassword ? " (\(BecomeHint.text))" : ""
                if !become, !result.succeeded, Self.needsRoot(result.stdoutText + result.stderrText) {
                    hint += " (the login user is not root here: add --become to run it as root)"
                }
                rows.append([outcome.host, (result.succeeded ? "ok, " : "FAILED, ") + how + ", \(result.duration.millisecondsText)" + hint])
            }
        }
        Terminal.line("")
        Terminal.line(Terminal.table(rows) { row, column, text in
            guard row > 0, column == 1 else { return row == 0 ? text.bold : text }
            return text.hasPrefix("ok") ? text.green : text.red.bold
        })
        // A file of this machine labctl cannot use (known_hosts, a key): bad input, not the host.
        if results.contains(where: { outcome in
            if case .localFile? = outcome.error?.kind { return true }
            return false
        }) { throw LabctlExit.badInput.error }
        let unreachable = results.contains { $0.error?.isUnreachable == true }
        if unreachable { throw ExitCode(RunExitCode.unreachable.rawValue) }
        if results.contains(where: { !$0.succeeded }) { throw ExitCode(RunExitCode.hostFailed.rawValue) }
    }

    /// What systemctl, apt and friends say when a non-root user asks for root's work.
    static func needsRoot(_ output: String) -> Bool {
        ["Access denied", "Interactive authentication required", "are you root?", "must be run as root",
         "Permission denied", "Operation not permitted"].contains { output.contains($0) }
    }
}
