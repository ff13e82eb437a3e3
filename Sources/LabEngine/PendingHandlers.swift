import Foundation
import SSH

/// Notifications kept on the host until their handler has run, so that a run cut short (Ctrl-C,
/// a later step failing, the controller killed, the connection lost) cannot lose them: the
/// change is on the host, so the promise to reload must be too. A record is written in the same
/// command as the change, before the change's commands, and removed in the same command as the
/// handler, after its commands succeeded; the next run finds the records in its one probe and
/// runs their handlers.
///
/// One file per handler of a playbook:
/// `<stateDirectory>/pending/<playbook file name>/<handler name>-<hash>`, both names reduced to
/// safe file-name characters. The hash of the exact names keeps "reload nginx" and
/// "reload_nginx" apart after that reduction, and the path the same across runs and machines.
public struct PendingHandlers: Sendable, Hashable {
    public let directory: String
    /// Handler name → record path, for the playbook's handlers.
    public let paths: [String: String]

    public init(stateDirectory: String, playbookFile: String, handlers: [String]) {
        let scope = PendingHandlers.safeName((playbookFile as NSString).lastPathComponent)
        directory = stateDirectory + "/pending/" + scope
        var paths: [String: String] = [:]
        for handler in handlers {
            paths[handler] = directory + "/" + PendingHandlers.safeName(handler) + "-" + SHA256Digest.hex(playbookFile.lastPathComponentOrSelf + "\n" + handler).prefix(12)
        }
        self.paths = paths
    }

    /// Letters, digits, `.`, `_` and `-` kept; anything else (spaces, slashes, quotes, non-ASCII)
    /// becomes `_`; a leading dot too, so no record is hidden or named `..`.
    static func safeName(_ text: String) -> String {
        var name = String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        if name.hasPrefix(".") { name = "_" + name.dropFirst() }
        if name.isEmpty { name = "_" }
        return String(name.prefix(80))
    }

    /// Shell lines that write the records of `handlers` (notified by `step`) before a change.
    func record(_ handlers: [String], step: String) -> [String] {
        let records = handlers.compactMap { handler in paths[handler].map { (handler: handler, path: $0) } }
        guard !records.isEmpty else { return [] }
        var lines = ["mkdir -p -- \(Shell.quote(directory))"]
        for record in records {
            // Says what it is for whoever finds it on the host; the runner only tests that it exists.
            let text = "handler: \(record.handler)\nnotified by: \(step)\n"
            lines.append("printf '%s' \(Shell.quote(text)) > \(Shell.quote(record.path))")
        }
        return lines
    }

    /// A shell line that removes the records of `handlers`.
    func clear(_ handlers: [String]) -> String? {
        let files = handlers.compactMap { paths[$0] }
        guard !files.isEmpty else { return nil }
        return "rm -f -- " + files.map(Shell.quote).joined(separator: " ")
    }

    /// The probe that says which records exist: `pending.<index>=1` per handler of `order`.
    func probe(_ order: [String]) -> String {
        order.enumerated().compactMap { index, handler in
            paths[handler].map { "[ ! -e \(Shell.quote($0)) ] || echo pending.\(index)=1" }
        }.joined(separator: "\n")
    }
}

/// The pending records' probe as a step of the shared probe script, so that reading them costs
/// no round trip of its own.
struct PendingProbe: StepOperation {
    var pending: PendingHandlers
    var handlers: [String]

    var probe: String { pending.probe(handlers) + "\ntrue" }

    func plan(_ facts: Facts) throws(StepFailure) -> StepPlan { .unchanged }

    func found(_ facts: Facts) -> [String] {
        handlers.enumerated().filter { facts["pending.\($0.offset)"] == "1" }.map(\.element)
    }
}

extension String {
    fileprivate var lastPathComponentOrSelf: String { (self as NSString).lastPathComponent }
}
