import Foundation
import Rainbow
import Synchronization

/// Output for people: one lock so lines from hosts working in parallel never interleave
/// mid-line, colours only on a terminal (Rainbow), errors on stderr.
enum Terminal {
    private static let lock = Mutex(())

    static func line(_ text: String) {
        lock.withLock { _ in
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }

    static func error(_ text: String) {
        lock.withLock { _ in
            FileHandle.standardError.write(Data(("error: ".red.bold + text + "\n").utf8))
        }
    }

    static func warning(_ text: String) {
        lock.withLock { _ in
            FileHandle.standardError.write(Data(("warning: ".yellow.bold + text + "\n").utf8))
        }
    }

    /// Reads a secret without echo from the terminal; nil when there is no terminal to ask on.
    static func askSecret(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) == 1, let answer = getpass(prompt) else { return nil }
        return String(cString: answer)
    }

    /// A table with left-aligned columns; `colour` styles a whole cell after padding.
    static func table(_ rows: [[String]], colour: (Int, Int, String) -> String = { _, _, text in text }) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { column in rows.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return rows.enumerated().map { rowIndex, row in
            row.enumerated().map { column, cell in
                let padded = column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                return colour(rowIndex, column, padded)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension Duration {
    var milliseconds: String {
        let (seconds, attoseconds) = components
        return String(format: "%.0f ms", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }
}
