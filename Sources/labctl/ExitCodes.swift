import ArgumentParser
import Foundation
import LabEngine
import LabSpec
import Synchronization

/// labctl's exit codes, one table for every verb (printed by `labctl --help`, README, docs).
enum LabctlExit: Int32, CaseIterable {
    case success = 0
    /// A command, step or check failed on a host.
    case hostFailed = 2
    /// A host could not be reached: connection, host key or login.
    case unreachable = 3
    /// Bad input: inventory, playbook, arguments, options, output paths.
    case badInput = 4
    /// This machine failed: the local lab, the hosts file, a file labctl writes.
    case localMachine = 5
    /// Interrupted with Ctrl-C (a drill still puts a stopped app back first).
    case interrupted = 130

    var meaning: String {
        switch self {
        case .success: return "success"
        case .hostFailed: return "a command, step or check failed on a host"
        case .unreachable: return "a host was unreachable (connection, host key or login)"
        case .badInput: return "bad input (inventory, playbook, arguments)"
        case .localMachine: return "this machine failed (the local lab, the hosts file)"
        case .interrupted: return "interrupted (Ctrl-C)"
        }
    }

    /// The table as `labctl --help` prints it.
    static var helpText: String {
        "Exit codes (every verb):\n" + allCases.map { "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0))\($0.meaning)" }
            .joined(separator: "\n")
    }

    var error: ExitCode { ExitCode(rawValue) }

    init(_ code: RunExitCode) {
        self = LabctlExit(rawValue: code.rawValue) ?? .hostFailed
    }

    /// Throws this code unless it is success; Ctrl-C seen during the run wins over anything else.
    func exitIfFailed() throws {
        if Interrupt.wasInterrupted { throw LabctlExit.interrupted.error }
        if self != .success { throw error }
    }
}

extension Labctl {
    /// ArgumentParser's own handling, with its usage errors (64, EX_USAGE) as labctl's 4, and
    /// `help VERB` refused for a verb that does not exist (ArgumentParser shows the root help).
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let unknown = unknownHelpTopic(arguments) {
            let verbs = configuration.subcommands.map { $0._commandName }.filter { $0 != "help" }
            let hint = Suggestion.closest(to: unknown, in: verbs).map { " (did you mean '\($0)'?)" } ?? ""
            FileHandle.standardError.write(Data("Error: '\(unknown)' is not a labctl verb\(hint); verbs: \(verbs.joined(separator: ", ")). See labctl --help.\n".utf8))
            Glibc.exit(LabctlExit.badInput.rawValue)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Glibc.exit(0)
            }
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Glibc.exit(code == .validationFailure ? LabctlExit.badInput.rawValue : code.rawValue)
        }
    }

    /// The word after `help` (or `help lab`) that names no verb.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help", arguments.count > 1 else { return nil }
        var commands: [any ParsableCommand.Type] = configuration.subcommands
        for word in arguments.dropFirst() where !word.hasPrefix("-") {
            guard let next = commands.first(where: { $0._commandName == word }) else { return word }
            commands = next.configuration.subcommands
            if commands.isEmpty { break }
        }
        return nil
    }
}

/// Checks an output path (`--json FILE`, `--junit FILE`) before any host is touched: its folder
/// must exist and the path must not be a folder, or a whole run would end with nowhere to write.
enum OutputPath {
    static func validate(_ path: String?, option: String) throws {
        guard let path else { return }
        guard !path.isEmpty else { throw ValidationError("\(option) needs a file name, e.g. \(option) report") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("\(option) \(path) is a folder; give a file name inside it, e.g. \(option) \(path)/report")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(option) \(path): the folder \(folder) does not exist; create it first (mkdir -p \(folder))")
        }
        if access(folder, W_OK) != 0 {
            throw ValidationError("\(option) \(path): the folder \(folder) is not writable by this user; choose another place")
        }
    }
}

extension OutputPath {
    /// Why a write failed, in words (never Foundation's error text).
    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        var posix = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError).map { Int32($0.code) }
        if nsError.domain == NSPOSIXErrorDomain { posix = Int32(nsError.code) }
        if nsError.domain == NSCocoaErrorDomain, [CocoaError.fileWriteNoPermission.rawValue, CocoaError.fileReadNoPermission.rawValue].contains(nsError.code) {
            posix = EACCES
        }
        switch posix {
        case EACCES?, EPERM?: return "permission denied; choose a place this user can write to"
        case ENOSPC?: return "the disk is full"
        case ENOENT?: return "its folder does not exist"
        case EISDIR?: return "it is a folder; give a file name"
        default: return "the file could not be written; check the path and its folder's permissions"
        }
    }
}

/// The sentence that says how to give sudo its password, for any failure whose output shows
/// `sudo -n` wanted one.
enum BecomeHint {
    static let text = "sudo on the host wants a password: pass -K (or set LABCTL_BECOME_PASSWORD), or allow the login user NOPASSWD sudo"

    static func applies(to output: String) -> Bool {
        output.contains("sudo: a password is required") || output.contains("sudo: a terminal is required")
    }
}

extension Interrupt {
    private static let interrupted = Atomic<Bool>(false)
    /// Whether Ctrl-C was pressed during this run: labctl then exits 130, whatever else failed.
    static var wasInterrupted: Bool { interrupted.load(ordering: .relaxed) }
    static func markInterrupted() { interrupted.store(true, ordering: .relaxed) }
}
