import Foundation

/// nginx time values ("5s", "500ms", "1m30s", "10" meaning seconds), as in `fail_timeout`.
public enum NginxTime {
    /// Nil when `text` is not an nginx time.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604_800), ("M", 2_592_000), ("y", 31_536_000)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Double(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix { $0.isLetter }
            if letters.isEmpty {
                // A bare number is seconds, and only as the whole value or its last part.
                guard rest.isEmpty else { return nil }
                total += value
                break
            }
            guard let unit = units.first(where: { $0.0 == String(letters) }) else { return nil }
            total += value * unit.1
            rest = rest.dropFirst(letters.count)
        }
        return .milliseconds(Int64((total * 1000).rounded()))
    }
}
