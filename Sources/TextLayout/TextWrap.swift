/// Text broken into lines between words for a terminal. A word longer than a line stays whole
/// (a URL or a path is worth more unbroken than cut), so such a line may be longer.
public enum TextWrap {
    /// `text` in lines of at most `width` columns, each starting with `indent` spaces; lines
    /// after the first get `hanging` more.
    public static func lines(_ text: String, width: Int, indent: Int = 0, hanging: Int = 0) -> [String] {
        var lines: [String] = []
        var current = ""
        var prefix = String(repeating: " ", count: indent)
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if current.isEmpty {
                current = prefix + word
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                prefix = String(repeating: " ", count: indent + hanging)
                current = prefix + word
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current.isEmpty ? prefix : current) }
        return lines
    }
}
