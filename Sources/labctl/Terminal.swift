import Foundation
import TextLayout
import Rainbow
import Synchronization

/// Output for people: one lock so lines from hosts working in parallel never interleave
/// mid-line, colours only on a terminal (Rainbow), errors on stderr. On a terminal a status
/// line may sit under the output (`status`); every line printed goes above it.
enum Terminal {
    /// The status line on screen, if any; the mutex is also the output lock.
    private static let shownStatus = Mutex<String?>(nil)
    private static let clearLine = "\r\u{1B}[2K"
    /// `--json -`: stdout carries the JSON document alone, and every line for people goes to stderr.
    private static let humanOnStandardError = Atomic<Bool>(false)

    static func sendHumanOutputToStandardError() {
        humanOnStandardError.store(true, ordering: .relaxed)
    }

    /// Where lines for people go: stdout, or stderr under `--json -`.
    private static var humanHandle: FileHandle {
        humanOnStandardError.load(ordering: .relaxed) ? .standardError : .standardOutput
    }

    private static var humanDescriptor: Int32 {
        humanOnStandardError.load(ordering: .relaxed) ? STDERR_FILENO : STDOUT_FILENO
    }

    static func line(_ text: String) {
        write(text + "\n", to: humanHandle)
    }

    static func error(_ text: String) {
        write("error: ".red.bold + text + "\n", to: .standardError)
    }

    static func warning(_ text: String) {
        write("warning: ".yellow.bold + text + "\n", to: .standardError)
    }

    private static func write(_ text: String, to handle: FileHandle) {
        shownStatus.withLock { status in
            guard let status else {
                handle.write(Data(text.utf8))
                return
            }
            humanHandle.write(Data(clearLine.utf8))
            handle.write(Data(text.utf8))
            humanHandle.write(Data(status.utf8))
        }
    }

    /// Whether the human output goes to a terminal that understands cursor codes (a status line needs one).
    static var isInteractive: Bool {
        isatty(humanDescriptor) == 1 && ProcessInfo.processInfo.environment["TERM"].map { $0 != "dumb" } ?? false
    }

    /// The terminal's width in columns (80 when it does not say).
    static var width: Int {
        var size = winsize()
        guard ioctl(humanDescriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Shows `text` as the status line under the output, or removes it (nil).
    static func status(_ text: String?) {
        let styled = text.map { $0.dim }
        shownStatus.withLock { status in
            guard styled != status else { return }
            humanHandle.write(Data((clearLine + (styled ?? "")).utf8))
            status = styled
        }
    }

    /// Reads a secret without echo from the terminal; nil when there is no terminal to ask on.
    static func askSecret(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) == 1, let answer = getpass(prompt) else { return nil }
        return String(cString: answer)
    }

    /// A table through the one renderer; `colour` styles a whole cell after padding. On a
    /// terminal the last column wraps at its width; into a pipe lines stay whole, for grep.
    static func table(_ rows: [[String]], colour: (Int, Int, String) -> String = { _, _, text in text }) -> String {
        TextTable(rows).render(width: isatty(humanDescriptor) == 1 ? width : nil, style: colour)
    }
}

extension Duration {
    var millisecondsText: String { String(format: "%.0f ms", milliseconds) }
}
