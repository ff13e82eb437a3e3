import Foundation

/// The lab's lines in a hosts file on the user's own computer (`labctl hosts`), as a managed
/// block that can be replaced in place and removed again, leaving the file as it was.
public struct HostsFileBlock: Sendable {
    public var labName: String
    /// `address name` pairs, in order.
    public var entries: [(address: String, name: String)]

    public init(labName: String, entries: [(address: String, name: String)]) {
        self.labName = labName
        self.entries = entries
    }

    var begin: String { "# BEGIN labctl \(labName)" }
    var end: String { "# END labctl \(labName)" }
    /// Written on the BEGIN line when labctl had to end the file's last line first, so that
    /// removing the block can take that newline away too and give back the file byte for byte.
    static let addedNewlineNote = " (labctl ended the previous line)"

    public var lines: [String] { entries.map { "\($0.address) \($0.name)" } }

    /// `text` with the block added, or replaced where it already is.
    public func applied(to text: String) -> String {
        let newline = text.contains("\r\n") ? "\r\n" : "\n"
        let base = removed(from: text)
        var body = [begin] + lines + [end]
        var prefix = base
        // Scalars, not Characters: Swift counts "\r\n" as one Character, so hasSuffix("\n") misses it.
        if !base.isEmpty && base.unicodeScalars.last != "\n" {
            body[0] += Self.addedNewlineNote
            prefix += newline
        }
        return prefix + body.joined(separator: newline) + newline
    }

    /// `text` without the block (unchanged when it has none).
    public func removed(from text: String) -> String {
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix(begin) }),
            let stop = lines[start...].firstIndex(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines) == end })
        else { return text }
        let endedPreviousLine = lines[start].contains(Self.addedNewlineNote)
        lines.removeSubrange(start...stop)
        var result = lines.joined(separator: "\n")
        if endedPreviousLine, result.unicodeScalars.last == "\n" {
            result.unicodeScalars.removeLast()
            if result.unicodeScalars.last == "\r" { result.unicodeScalars.removeLast() }
        }
        return result
    }

    /// Where the user's hosts file is: Windows' own file when running under WSL, since the
    /// browser that opens the lab runs on Windows there.
    public static func defaultPath() -> String {
        let release = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? ""
        let windows = "/mnt/c/Windows/System32/drivers/etc/hosts"
        if release.lowercased().contains("microsoft"), FileManager.default.fileExists(atPath: windows) { return windows }
        return "/etc/hosts"
    }

    public enum Change: Sendable, Equatable {
        case unchanged
        /// The old content was saved at `backup`.
        case written(backup: String)
    }

    /// Applies (or removes) the block in the file at `path`; a backup of the old content is
    /// written beside it first, and the new content replaces the file in one rename.
    public func update(fileAt path: String, remove: Bool) throws -> Change {
        let url = URL(fileURLWithPath: path)
        let data = try Data(contentsOf: url)
        let text = String(decoding: data, as: UTF8.self)
        let updated = remove ? removed(from: text) : applied(to: text)
        if updated == text { return .unchanged }
        let backup = path + ".labctl-backup"
        try data.write(to: URL(fileURLWithPath: backup))
        // Write then rename, keeping the mode: a crash never leaves a half-written hosts file.
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let staged = path + ".labctl-new"
        try Data(updated.utf8).write(to: URL(fileURLWithPath: staged))
        if let mode = attributes[.posixPermissions] { try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: staged) }
        if rename(staged, path) != 0 {
            // Some files cannot be replaced by rename (Windows' hosts file through WSL, a bind
            // mount): write in place instead.
            try? FileManager.default.removeItem(atPath: staged)
            try Data(updated.utf8).write(to: url)
        }
        return .written(backup: backup)
    }
}
