import Foundation

/// One thing wrong with an inventory: where (a JSON path such as `hosts[2].address`, empty for
/// the file as a whole) and what, as one sentence that names the bad value and what is expected.
public struct InventoryProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Why an inventory could not be used: the file it came from and every problem found in it.
public struct InventoryError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// No file at the path.
        case fileNotFound
        /// The file exists but could not be read (permissions, a directory...).
        case unreadable
        /// Not JSON; `line` and `column` (1-based) when the parser said where.
        case syntax(line: Int?, column: Int?)
        /// Valid JSON that does not describe a usable inventory; see `problems`.
        case invalid
    }

    /// The inventory's path as the user gave it (used as the prefix of every message).
    public var file: String
    public var reason: Reason
    public var problems: [InventoryProblem]

    public init(file: String, reason: Reason, problems: [InventoryProblem]) {
        self.file = file
        self.reason = reason
        self.problems = problems
    }

    /// `inventory.json: hosts[0].port: ...` for one problem; for several, a count and one
    /// indented line each, so that every problem can be fixed in one pass.
    public var description: String {
        switch problems.count {
        case 0: return "\(file): invalid inventory"
        case 1: return "\(file): \(problems[0])"
        default:
            return "\(file): \(problems.count) problems:\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }
}

/// A target of `Inventory.select(_:)` that names no host and no role.
public struct InventoryTargetError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The parts of the target that matched nothing; empty when the target itself was empty.
    public var unknown: [String]
    public var knownHosts: [String]
    public var knownRoles: [String]

    public init(unknown: [String], knownHosts: [String], knownRoles: [String]) {
        self.unknown = unknown
        self.knownHosts = knownHosts
        self.knownRoles = knownRoles
    }

    public var description: String {
        let choices = "use 'all', a host (\(knownHosts.joined(separator: ", "))) "
            + "or a role (\(knownRoles.joined(separator: ", "))), or a comma-separated list of them"
        if unknown.isEmpty {
            return "no target given; \(choices)"
        }
        // What was typed, with its control characters and quotes made visible.
        let names = unknown.map(ValueForm.shown).joined(separator: ", ")
        let what = unknown.count == 1 ? "is not a host or role" : "are not hosts or roles"
        return "\(names) \(what) of the inventory; \(choices)"
    }
}

// So that `error.localizedDescription` (used by swift-argument-parser and generic handlers)
// shows the same text as `description` instead of Foundation's generic "operation could not
// be completed".
extension InventoryError: LocalizedError {
    public var errorDescription: String? { description }
}

extension InventoryTargetError: LocalizedError {
    public var errorDescription: String? { description }
}
