import ArgumentParser
import Foundation
import LabEngine
import LabLocal
import LabSpec
import Rainbow

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put the inventory's SSH key on its hosts (what ssh-copy-id does).",
        subcommands: [Install.self])

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the inventory's key if needed and install it on the hosts, logging in once with a password.",
            discussion: """
                For each host: when the inventory's key (its `key`) logs in already,
                nothing changes. Else labctl logs in once with the password (-k asks
                for it, or set LABCTL_SSH_PASSWORD), appends the public key to the
                login user's ~/.ssh/authorized_keys (the folder 700, the file 600, the
                key never listed twice), and proves that the key logs in. A key file
                that does not exist yet is made first (ed25519, no passphrase).
                Safe to run again: a second run changes nothing.

                Examples:
                  labctl keys install -k
                  labctl keys install app1 -k --host-key-checking accept-new
                """)

        @OptionGroup var inventoryOptions: InventoryOptions
        @OptionGroup var connection: ConnectionOptions

        @Argument(help: "Hosts to install the key on: all (default), a host name, a role, or a comma list of them.")
        var target = "all"

        func run() async throws {
            let inventory = try inventoryOptions.load()
            let secrets = connection.secrets(for: inventory, verbosity: inventoryOptions.verbosity)
            let targets = try Targets.select(target, in: inventory, secrets: secrets)
            let hosts = Dictionary(inventory.hosts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            // One key per distinct key file; hosts that log in with the agent only have none.
            var publicKeys: [String: String] = [:]
            for path in Set(targets.compactMap { hosts[$0.name]?.keyPath }).sorted() {
                do {
                    publicKeys[path] = try await LoginKey.ensure(at: path, comment: "labctl@\(inventory.name)") { path in
                        Terminal.line("making the key pair \(path) (ed25519)")
                    }
                } catch {
                    throw LabCommand.failure(error)
                }
            }
            func install(_ targets: [RunTarget], password: String?) async -> [AdHoc.KeyInstallResult] {
                var results: [AdHoc.KeyInstallResult] = []
                for (path, publicKey) in publicKeys.sorted(by: { $0.key < $1.key }) {
                    let group = targets.filter { hosts[$0.name]?.keyPath == path }
                    results += await AdHoc.installKey(group, keyPath: path, publicKey: publicKey, password: password)
                }
                return results
            }
            var results = await install(targets, password: secrets.loginPassword)
            // As ssh-copy-id: the password is asked for only when a host needs it.
            let needing = Set(results.filter(\.needsPassword).map(\.host))
            if secrets.loginPassword == nil, !needing.isEmpty,
                let password = Terminal.askSecret("SSH password for \(needing.sorted().joined(separator: ", ")): ")
            {
                results = results.filter { !needing.contains($0.host) } + (await install(targets.filter { needing.contains($0.name) }, password: password))
            }
            var skipped: [String] = []
            skipped = targets.filter { hosts[$0.name]?.keyPath == nil }.map(\.name)
            let order = Dictionary(targets.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
            results.sort { (order[$0.host] ?? 0) < (order[$1.host] ?? 0) }

            var rows = [["HOST", "ADDRESS", "RESULT", "DETAILS"]]
            for result in results {
                let key = hosts[result.host]?.keyPath ?? ""
                if let error = result.error {
                    rows.append([result.host, result.address, error.isUnreachable ? "UNREACHABLE" : "FAILED", inventoryOptions.verbose ? "\(error.summary) (while \(error.operation.rawValue))" : error.summary])
                } else if let problem = result.problem {
                    rows.append([result.host, result.address, result.needsPassword ? "UNREACHABLE" : "FAILED", problem])
                } else {
                    switch result.outcome {
                    case .alreadyWorks?: rows.append([result.host, result.address, "ok", "\(key) logs in already; nothing changed"])
                    case .installed?: rows.append([result.host, result.address, "installed", "\(key).pub added to ~/.ssh/authorized_keys; key login works"])
                    case .wasListed?: rows.append([result.host, result.address, "ok", "\(key).pub was in ~/.ssh/authorized_keys already; key login works"])
                    case nil: rows.append([result.host, result.address, "FAILED", "no result"])
                    }
                }
            }
            for name in skipped {
                rows.append([name, hosts[name]?.address ?? "", "skipped", "the host logs in with the ssh-agent only (no key in the inventory)"])
            }
            Terminal.line(Terminal.table(rows) { row, column, text in
                guard row > 0, column == 2 else { return row == 0 ? text.bold : text }
                return ["FAILED", "UNREACHABLE"].contains(text) ? text.red.bold : text.green
            })
            let failed = results.filter { !$0.succeeded }
            if failed.isEmpty {
                Terminal.line("key login works on \(results.count) host\(results.count == 1 ? "" : "s").".green)
                return
            }
            if failed.contains(where: { result in
                if case .localFile? = result.error?.kind { return true }
                return false
            }) { throw LabctlExit.badInput.error }
            // Not logged in (host key, connection, a refused password) is unreachable, by the
            // one rule ping, exec and playbook runs use; a login that worked but could not
            // install the key is a failure on the host.
            let unreachable = failed.contains { $0.error?.isUnreachable == true || $0.needsPassword || ($0.error == nil && $0.problem == nil && $0.outcome == nil) }
            throw (unreachable ? LabctlExit.unreachable : LabctlExit.hostFailed).error
        }
    }
}
