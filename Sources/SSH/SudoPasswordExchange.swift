import Foundation

/// The conversation with `sudo -S` that keeps the password out of the command's stdin.
///
/// `sudo -S` reads the password from stdin only when it needs one: with NOPASSWD or a cached
/// timestamp it reads nothing, and a password sent ahead would become the command's first line of
/// input (a root shell command, for a script fed to `sh -s`). So nothing is written until sudo
/// shows `prompt` on stderr; then the password, once; and the command's stdin only after the
/// shell sudo started has printed `readyMarker` on stderr, just before it becomes the command.
///
/// Both strings carry a random token per command, so nothing a host prints before the command
/// starts can be taken for them; after the marker nothing is scanned, so the command's own output
/// cannot forge them either.
struct SudoPasswordExchange: Sendable {
    enum State: Sendable, Equatable {
        /// sudo has asked for nothing yet: stdin stays silent.
        case waiting
        /// The password was written; sudo is checking it.
        case answered
        /// The command runs: its stdin may flow, its stderr passes untouched.
        case started
        /// sudo asked a second time: the password was wrong, and is not offered again. What sudo
        /// says after that answers the EOF labctl sent ("no password was provided"), not the
        /// user: it is dropped.
        case refused
    }

    /// No `%` in either: sudo expands `%` escapes in its prompt.
    let prompt: String
    let readyMarker: String
    private(set) var state = State.waiting
    /// stderr before the marker: it may hold part of the prompt or of the marker.
    private var held: [UInt8] = []
    /// sudo may print a newline once it has read the password (it does on a terminal): it is
    /// sudo's, not the command's.
    private var dropNewline = false

    init(token: String = SudoPasswordExchange.randomToken()) {
        prompt = "[labctl-sudo-\(token)] password:"
        readyMarker = "labctl-sudo-ready-\(token)"
    }

    /// 128 bits from the system's cryptographic generator.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in
            let byte = UInt8.random(in: .min ... .max, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0xf, radix: 16)
        }.joined()
    }

    /// The bytes of stderr held back, not yet shown: they count towards the output limit.
    var heldCount: Int { held.count }

    /// Takes stderr as it arrives; returns what of it the caller may see, and whether sudo has
    /// just asked for the password (true at most once).
    mutating func stderr(_ chunk: Data) -> (visible: Data, asked: Bool) {
        if state == .refused { return (Data(), false) }
        var bytes = [UInt8](chunk)
        if dropNewline, let first = bytes.first {
            dropNewline = false
            if first == Self.newline { bytes.removeFirst() }
        }
        if state == .started { return (Data(bytes), false) }
        held += bytes
        var visible = Data()
        var asked = false
        let promptBytes = Array(prompt.utf8)
        let markerLine = Array((readyMarker + "\n").utf8)
        while state == .waiting || state == .answered {
            let promptRange = held.firstRange(of: promptBytes)
            let markerRange = held.firstRange(of: markerLine)
            if let marker = markerRange, promptRange.map({ marker.lowerBound < $0.lowerBound }) ?? true {
                visible += held[..<marker.lowerBound]
                visible += held[marker.upperBound...]
                held = []
                state = .started
            } else if let promptRange {
                visible += held[..<promptRange.lowerBound]
                held.removeSubrange(..<promptRange.upperBound)
                if held.first == Self.newline {
                    held.removeFirst()
                } else if held.isEmpty {
                    dropNewline = true
                }
                if state == .waiting {
                    state = .answered
                    asked = true
                } else {
                    state = .refused
                    held = []
                }
            } else {
                break
            }
        }
        return (visible, asked)
    }

    /// The last line sudo printed before the command started, when it is a line without its
    /// newline: sudo ends its messages with one, so this is someone waiting for an answer.
    var unansweredPrompt: String? {
        guard state == .waiting || state == .answered else { return nil }
        let tail = held.split(separator: Self.newline, omittingEmptySubsequences: false).last ?? []
        let text = String(decoding: tail, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? nil : text
    }

    /// The channel ended before the command started: what sudo said is the caller's to see.
    mutating func finish() -> Data {
        defer { held = [] }
        return Data(held)
    }

    private static let newline = UInt8(ascii: "\n")
}
