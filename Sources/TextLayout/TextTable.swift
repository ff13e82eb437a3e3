/// labctl's one table renderer: ping, exec, keys, hosts, lab status, the run recap and verify's
/// distributions all print through it.
///
/// Columns are padded to their widest cell and joined by two spaces; the last column is never
/// padded (no trailing blanks). With a `width`, a last cell that would run past it is wrapped
/// between words under its own column, so a table stays readable on an 80-column terminal.
/// `style` colours a cell after padding, so colour codes never count towards a width.
/// Hand-written: none of our packages lays out tables, and this is what one would ask of it.
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var rows: [[String]]
    /// Per column; columns not named here are left-aligned.
    public var alignments: [Alignment]

    public init(_ rows: [[String]], alignments: [Alignment] = []) {
        self.rows = rows
        self.alignments = alignments
    }

    public func lines(
        width: Int? = nil, indent: Int = 0,
        style: (_ row: Int, _ column: Int, _ padded: String) -> String = { _, _, padded in padded }
    ) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        guard columns > 0 else { return [] }
        let widths = (0..<columns).map { column in
            rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
        }
        let lead = String(repeating: " ", count: indent)
        var out: [String] = []
        for (rowIndex, row) in rows.enumerated() {
            var cells: [String] = []
            var used = indent
            for column in 0..<row.count {
                let cell = row[column]
                let isLast = column == row.count - 1
                if isLast {
                    // The last cell is wrapped, not padded: under its own column from the second line on.
                    let room = width.map { $0 - used } ?? Int.max
                    let parts = room >= 20 && cell.count > room ? TextWrap.lines(cell, width: room) : [cell]
                    cells.append(style(rowIndex, column, parts[0]))
                    let text = lead + cells.joined(separator: "  ")
                    out.append(trimmedRight(text))
                    for part in parts.dropFirst() {
                        out.append(String(repeating: " ", count: used) + part)
                    }
                } else {
                    let gap = String(repeating: " ", count: widths[column] - cell.count)
                    let alignment = column < alignments.count ? alignments[column] : .left
                    cells.append(style(rowIndex, column, alignment == .left ? cell + gap : gap + cell))
                    used += widths[column] + 2
                }
            }
            if row.isEmpty { out.append("") }
        }
        return out
    }

    public func render(
        width: Int? = nil, indent: Int = 0,
        style: (_ row: Int, _ column: Int, _ padded: String) -> String = { _, _, padded in padded }
    ) -> String {
        lines(width: width, indent: indent, style: style).joined(separator: "\n")
    }

    private func trimmedRight(_ text: String) -> String {
        var text = text
        while text.last == " " { text.removeLast() }
        return text
    }
}
