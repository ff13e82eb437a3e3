import Foundation

/// Unified diffs of a file's old and new content, made here rather than with `diff -u` on the
/// host: the old content already arrived with the probe and the new one is rendered here, so a
/// local diff costs no extra round trip, works in check mode (nothing is staged on the host)
/// and does not depend on diffutils being installed. Files are configs of a few hundred
/// lines, so a plain LCS table is fast enough; larger inputs get a one-line summary.
public enum UnifiedDiff {
    public static func make(old: String, new: String, path: String, context: Int = 3) -> String {
        if old == new { return "" }
        let a = lines(old), b = lines(new)
        let header = "--- \(path)\n+++ \(path)\n"
        guard a.count * b.count <= 4_000_000 else {
            return header + "@@ the file changes (\(a.count) -> \(b.count) lines; too large to show) @@\n"
        }
        // Edit script from the LCS table: (tag, line) where tag is " ", "-" or "+".
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var edits: [(tag: Character, text: String, oldLine: Int, newLine: Int)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                edits.append((" ", a[i], i, j)); i += 1; j += 1
            } else if i < a.count, j == b.count || lcs[i + 1][j] >= lcs[i][j + 1] {
                // Removals before additions, as diff -u prints them.
                edits.append(("-", a[i], i, j)); i += 1
            } else {
                edits.append(("+", b[j], i, j)); j += 1
            }
        }
        // Group changes with `context` lines around them into hunks.
        var output = header
        var index = 0
        while index < edits.count {
            guard let firstChange = edits[index...].firstIndex(where: { $0.tag != " " }) else { break }
            let start = max(index, firstChange - context)
            var end = firstChange
            var lastChange = firstChange
            while end < edits.count {
                if edits[end].tag != " " { lastChange = end }
                if end - lastChange > 2 * context { break }
                end += 1
            }
            end = min(edits.count, lastChange + context + 1)
            let hunk = edits[start..<end]
            let oldCount = hunk.filter { $0.tag != "+" }.count
            let newCount = hunk.filter { $0.tag != "-" }.count
            let oldStart = oldCount == 0 ? hunk.first!.oldLine : hunk.first!.oldLine + 1
            let newStart = newCount == 0 ? hunk.first!.newLine : hunk.first!.newLine + 1
            // diff -u leaves out a count of 1.
            func range(_ start: Int, _ count: Int) -> String { count == 1 ? "\(start)" : "\(start),\(count)" }
            output += "@@ -\(range(oldStart, oldCount)) +\(range(newStart, newCount)) @@\n"
            for edit in hunk { output += "\(edit.tag)\(edit.text)\n" }
            index = end
        }
        if !old.isEmpty, !old.hasSuffix("\n") || !new.isEmpty && !new.hasSuffix("\n") {
            output += "\\ the last line has no newline at the end\n"
        }
        return output
    }

    static func lines(_ text: String) -> [String] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }
}
