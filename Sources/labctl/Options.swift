import ArgumentParser
import Foundation
import LabEngine
import LabSpec
import LabVerify
import SSH

/// Where the inventory is; shared by every verb that talks to hosts.
struct InventoryOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("The inventory file (default: $LABCTL_INVENTORY, else ./inventory.json).", valueName: "path"))
    var inventory: String = ProcessInfo.processInfo.environment["LABCTL_INVENTORY"].flatMap { $0.isEmpty ? nil : $0 } ?? InventoryLoader.defaultPath

    @Flag(name: [.short, .customLong("verbose")], help: """
        Show more: each error's details and every output line; -vv (or --vv) also every line each command prints; \
        -vvv also, per host, how labctl connects (address, port, user, key, known_hosts, host key policy, jump hosts, \
        what the SSH config supplied) before it does, and each command line as sent (never a password).
        """)
    var verbosity: Int

    var verbose: Bool { verbosity > 0 }

    /// The inventory as the file says it, or exit 4 with every problem printed: for the local
    /// lab, whose hosts labctl itself makes and reaches, whatever the user's SSH config says.
    func loadFile() throws -> Inventory {
        do {
            return try InventoryLoader.load(path: inventory)
        } catch {
            Terminal.error(error.description)
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
    }

    /// The inventory as the user's SSH config completes it, or exit 4 with every problem printed.
    func load() throws -> Inventory {
        let loaded = try loadFile()
        do {
            let applied = try SSHConfigApplication.apply(to: loaded)
            if verbose { applied.notes.forEach { Terminal.line($0.dim) } }
            return applied.inventory
        } catch {
            Terminal.error(error.description)
            throw ExitCode(RunExitCode.badInput.rawValue)
        }
    }
}

/// How to log in, beyond what the inventory says. Secrets come from the environment or a prompt,
/// never from argv (which other users can read in `ps`).
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Use this known_hosts file instead of the inventory's `ssh.known_hosts`.", valueName: "path"))
    var knownHosts: String?

    @Option(help: ArgumentHelp(
        "strict: refuse hosts not in known_hosts (default); accept-new: record unknown hosts' keys. A changed key is always refused.",
        valueName: "policy"))
    var hostKeyChecking: HostKeyPolicy?

    @Flag(name: [.customShort("k"), .long], help: "Ask for the login password (or set LABCTL_SSH_PASSWORD); meant for installing a key the first time.")
    var askPass = false

    @Flag(name: [.customShort("K"), .long], help: "Ask for the sudo password of hosts with `become` (or set LABCTL_BECOME_PASSWORD); default: passwordless sudo.")
    var askBecomePass = false

    /// - verbosity: at 3 (-vvv) each connection and command line is told (`SSHTrace`).
    func secrets(for inventory: Inventory, verbosity: Int) -> ConnectionSecrets {
        let environment = ProcessInfo.processInfo.environment
        var secrets = ConnectionSecrets(knownHostsPath: knownHosts, hostKeyPolicy: hostKeyChecking)
        if verbosity >= 3 { secrets.trace = { Terminal.line($0.dim) } }
        secrets.keyPassphrase = environment["LABCTL_KEY_PASSPHRASE"]
        if secrets.keyPassphrase == nil,
            let locked = inventory.hosts.compactMap(\.keyPath).first(where: PrivateKeyInfo.needsPassphrase)
        {
            secrets.keyPassphrase = Terminal.askSecret("Passphrase for \(locked): ")
        }
        secrets.loginPassword = environment["LABCTL_SSH_PASSWORD"] ?? (askPass ? Terminal.askSecret("SSH password: ") : nil)
        secrets.becomePassword = environment["LABCTL_BECOME_PASSWORD"] ?? (askBecomePass ? Terminal.askSecret("sudo password: ") : nil)
        return secrets
    }
}

extension HostKeyPolicy: ExpressibleByArgument {}
extension DrillStopMethod: ExpressibleByArgument {}

/// `--json FILE` or `--json -`, the same on every verb: the verb's result as one JSON document
/// with a top-level `schemaVersion` (ReportJSON), written atomically to FILE, or to stdout for
/// `-`. With `-` stdout carries the document alone: everything labctl prints for people
/// (progress, tables, hints) goes to stderr instead.
struct JSONOutputOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Write the result as JSON (with schemaVersion) to this file, or - for stdout (the usual output then goes to stderr).",
        valueName: "file"))
    var json: String?

    static let standardOutput = "-"

    /// The path checked before any host is touched; `-` sends the human output to stderr from
    /// here on, before the verb prints anything.
    func validate() throws {
        if json == Self.standardOutput {
            Terminal.sendHumanOutputToStandardError()
        } else {
            try OutputPath.validate(json, option: "--json")
        }
    }

    /// Writes the document, if --json was given. A file that cannot be written is said in a
    /// warning: the run itself happened and its exit status stays the run's.
    func write<Document: Encodable>(_ document: Document) {
        guard let json else { return }
        let data: Data
        do {
            data = try ReportJSON.encode(document)
        } catch {
            Terminal.warning("could not make the JSON report: \(error)")
            return
        }
        if json == Self.standardOutput {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        do {
            try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: json), options: .atomic)
        } catch {
            Terminal.warning("could not write \(json): \(OutputPath.reason(error))")
        }
    }
}
