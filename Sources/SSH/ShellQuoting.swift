/// POSIX shell quoting and the command lines labctl builds around a user's command.
public enum ShellQuoting {
    /// Single-quotes `word` for any POSIX shell: inside '...' nothing is special (`$`, backquotes,
    /// backslashes, newlines, globs) except ' itself, which is closed, escaped and reopened.
    /// Words made only of characters that mean nothing to sh stay bare, for readable -vv output.
    public static func quote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0)) }) {
            return word
        }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The line sshd hands to the login shell for `command`: environment exported first, the
    /// host-side timeout around it, and sudo around that.
    ///
    /// Whenever anything wraps the command it runs under `sh -c`, so the result does not depend on
    /// the login shell; a bare command is passed as it is, like `ssh host cmd`, and so is a
    /// program with its arguments (`RemoteCommand(arguments:)`) after sudo and timeout.
    ///
    /// With a sudo password, sudo shows `exchange.prompt` and the shell it starts prints
    /// `exchange.readyMarker` before the command: inside the command's own `sh -c`, or, for a
    /// program, from a `sh -c` that then execs it (the one extra process, only in this case).
    static func wrap(_ command: RemoteCommand, exchange: SudoPasswordExchange? = nil) -> String {
        var body = command.command
        if !command.environment.isEmpty {
            let exports = command.environment.keys.sorted().map { "\($0)=\(quote(command.environment[$0]!))" }
            body = "export \(exports.joined(separator: " ")); \(body)"
        }
        let runsAsProgram = command.isProgram && command.environment.isEmpty
        var words: [String] = []
        switch command.become {
        case .sudo: words += ["sudo", "-n", "-H", "--"]
        case .sudoWithPassword:
            let exchange = exchange ?? SudoPasswordExchange()
            let ready = "echo \(quote(exchange.readyMarker)) >&2"
            words += ["sudo", "-S", "-p", quote(exchange.prompt), "-H", "--"]
            if runsAsProgram {
                words += ["sh", "-c", quote(ready + "; exec \"$@\""), "sh"]
            } else {
                body = ready + "; " + body
            }
        case nil: break
        }
        if let timeout = command.timeout {
            // Whole seconds, rounded up, from 1 to Duration.longestWait's: never a trap, whatever the Duration.
            let (whole, fraction) = Session.clamped(timeout).components
            let seconds = max(1, whole + (fraction > 0 ? 1 : 0))
            words += ["timeout", "-k", "5", String(seconds)]
        }
        if words.isEmpty {
            return body
        }
        if runsAsProgram {
            return (words + [body]).joined(separator: " ")
        }
        return (words + ["sh", "-c", quote(body)]).joined(separator: " ")
    }
}
