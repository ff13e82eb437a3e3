import ArgumentParser
import Foundation
import LabEngine
import LabSpec

struct Hosts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The hosts-file lines that let your browser open the lab's domain.",
        discussion: """
            Prints the lines that map the lab's domain to the proxy. With --apply they
            are written to your hosts file as a managed block (a backup of the old file
            is kept beside it); --remove takes the block out again. Under WSL the default
            file is Windows' own hosts file, since the browser runs on Windows.

            Examples:
              labctl hosts
              sudo labctl hosts --apply
              labctl hosts --apply --file ./hosts.test
            """)

    @OptionGroup var inventoryOptions: InventoryOptions

    @Flag(help: "Write the lines to the hosts file as a managed block.")
    var apply = false

    @Flag(help: "Remove the managed block from the hosts file.")
    var remove = false

    @Option(help: ArgumentHelp("The hosts file (default: /etc/hosts, or Windows' under WSL).", valueName: "path"))
    var file: String?

    func validate() throws {
        if apply && remove { throw ValidationError("--apply and --remove do opposite things; give one") }
    }

    func run() async throws {
        let inventory = try inventoryOptions.load()
        guard let domain = inventory.domain, let proxy = inventory.proxyHosts.first else {
            Terminal.error("\(inventoryOptions.inventory): the inventory needs a `domain` and a host with the role `proxy`")
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
        let block = HostsFileBlock(labName: inventory.name, entries: [(proxy.address, domain)])
        guard apply || remove else {
            block.lines.forEach(Terminal.line)
            return
        }
        let path = file ?? HostsFileBlock.defaultPath()
        do {
            switch try block.update(fileAt: path, remove: remove) {
            case .unchanged:
                Terminal.line("\(path): already \(remove ? "without the lab's block" : "up to date")")
            case .written(let backup):
                Terminal.line("\(path): \(remove ? "removed the lab's block" : "wrote \(block.lines.joined(separator: ", "))") (old file kept as \(backup))")
            }
        } catch {
            Terminal.error("\(path): \(OutputPath.reason(error))\(getuid() != 0 ? "; writing the hosts file usually needs root (sudo)" : "")")
            throw LabctlExit.localMachine.error
        }
    }
}
