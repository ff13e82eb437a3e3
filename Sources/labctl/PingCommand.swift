import ArgumentParser
import LabEngine
import LabSpec
import Rainbow

struct Ping: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that every host answers over SSH.",
        discussion: """
            Connects to every host of the inventory at once, checks its host key
            against known_hosts, logs in, and runs `uname -sr` and `id -un` (and
            `sudo -n true` where the host uses become). One line per host: ok with
            the system, the login user and the time taken, or why it failed.
            Exits 3 if a host is unreachable, 2 if one answered but failed a check.

            Examples:
              labctl ping
              labctl ping app           # only the hosts with the role `app`
              labctl ping -i inventory.vms.example.json --host-key-checking accept-new
              labctl ping --json -      # JSON on stdout, the table on stderr
            """)

    @OptionGroup var inventoryOptions: InventoryOptions
    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Hosts to ping: all (default), a host name, a role, or a comma list of them.")
    var target = "all"

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("Hosts connected to at once (1-1000).", valueName: "n"))
    var forks = 50

    /// --json: a PingReport.
    @OptionGroup var output: JSONOutputOptions

    func validate() throws {
        if !(1...1000).contains(forks) { throw ValidationError("--forks must be between 1 and 1000 hosts at once; got \(forks)") }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        let targets = try Targets.select(target, in: inventory, secrets: connection.secrets(for: inventory, verbosity: inventoryOptions.verbosity))
        let results = await AdHoc.ping(targets, forks: forks)
        output.write(PingReport(results))
        var rows = [["HOST", "ADDRESS", "RESULT", "TIME", "DETAILS"]]
        for ping in results {
            if let error = ping.error {
                rows.append([ping.host, ping.address, error.isUnreachable ? "UNREACHABLE" : "FAILED", "-", inventoryOptions.verbose ? "\(error.summary) (while \(error.operation.rawValue))" : error.summary])
            } else {
                var details = "\(ping.system ?? "?"), logged in as \(ping.loginUser ?? "?")"
                if let sudo = ping.sudoWorks { details += sudo ? ", sudo ok" : ", sudo REFUSED (passwordless sudo is not set up; use -K)" }
                if let key = ping.recordedHostKey { details += "; its host key was recorded (\(key))" }
                let total = (ping.connectTime ?? .zero) + (ping.commandTime ?? .zero)
                rows.append([ping.host, ping.address, ping.succeeded ? "ok" : "FAILED", total.millisecondsText, details])
            }
        }
        Terminal.line(Terminal.table(rows) { row, column, text in
            guard row > 0, column == 2 else { return row == 0 ? text.bold : text }
            return text.hasPrefix("ok") ? text.green : text.red.bold
        })
        let failed = results.filter { !$0.succeeded }
        if failed.isEmpty {
            Terminal.line("\(results.count) host\(results.count == 1 ? "" : "s") answered.".green)
            return
        }
        if failed.contains(where: { ping in
            if case .localFile? = ping.error?.kind { return true }
            return false
        }) { throw LabctlExit.badInput.error }
        let unreachable = failed.contains { $0.error?.isUnreachable == true }
        if unreachable, let hint = await LabCommand.notRunningHint(inventoryPath: inventoryOptions.inventory) { Terminal.line(hint.red) }
        throw ExitCode((unreachable ? RunExitCode.unreachable : RunExitCode.hostFailed).rawValue)
    }
}

/// Turning a command line's target into hosts ready to connect to.
enum Targets {
    static func select(_ target: String, in inventory: Inventory, secrets: ConnectionSecrets) throws -> [RunTarget] {
        let hosts: [InventoryHost]
        do {
            hosts = try inventory.select(target)
        } catch {
            Terminal.error(error.description)
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
        let names = Set(hosts.map(\.name))
        return InventoryContext.targets(inventory, secrets: secrets).filter { names.contains($0.name) }
    }
}
