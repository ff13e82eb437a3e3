import Foundation

/// Shell text for POSIX sh. Every argument that goes into a command line on a host passes
/// through `Shell.quote`, one function so that there is one thing to get right and test.
public enum Shell {
    /// `abc` → `'abc'`, `it's` → `'it'\''s'`. Single quotes keep everything literal in sh
    /// (`$`, backquotes, backslashes, newlines, globs); the only character they cannot hold is
    /// the single quote itself, which is closed, escaped and reopened.
    public static func quote(_ value: String) -> String {
        if !value.isEmpty, value.unicodeScalars.allSatisfy({ safe.contains($0) }) { return value }
        return "'" + value.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// Characters that mean nothing to sh, so a word made only of them needs no quotes
    /// (keeps commands readable in -vv output and in tests).
    private static let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")

    /// A command line from words, each quoted.
    public static func join(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}
