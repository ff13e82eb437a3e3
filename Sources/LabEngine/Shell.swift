import Foundation
import SSH

/// Shell text for POSIX sh. Every argument that goes into a command line on a host passes
/// through `Shell.quote`, one function so that there is one thing to get right and test.
public enum Shell {
    /// `abc` → `abc`, `it's` → `'it'\''s'`: the SSH module's quoting, the one implementation
    /// (single quotes keep everything literal in sh but the single quote itself).
    public static func quote(_ value: String) -> String {
        ShellQuoting.quote(value)
    }

    /// A command line from words, each quoted.
    public static func join(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}
