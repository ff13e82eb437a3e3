import Foundation
import Testing
import TextLayout

struct TextWrapTests {
    @Test("wrapping: between words, indented, a word longer than the line kept whole")
    func wrapping() {
        let text = "no answer from 198.18.42.11:3000: connection refused; start it with labctl exec app1 --become -- systemctl start wayshub"
        let lines = TextWrap.lines(text, width: 40, indent: 8, hanging: 2)
        #expect(lines.allSatisfy { $0.count <= 40 })
        #expect(lines.first?.hasPrefix("        no answer") == true)
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("          ") && !$0.hasPrefix("           ") })
        #expect(lines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ") == text)
        #expect(TextWrap.lines("http://a-very-long-url.example/with/a/path", width: 10) == ["http://a-very-long-url.example/with/a/path"])
    }
}

struct TextTableTests {
    @Test("columns padded to the widest cell, two spaces apart, the last one unpadded")
    func padding() {
        let table = TextTable([["HOST", "RESULT", "DETAILS"], ["app1", "ok", "x"], ["proxy-long", "FAILED", ""]])
        #expect(table.lines() == ["HOST        RESULT  DETAILS", "app1        ok      x", "proxy-long  FAILED"])
    }

    @Test("right-aligned columns, header included; rows of fewer cells end where they end")
    func alignment() {
        let table = TextTable([["host", "ok", "changed", "status"], ["app1", "12", "3", "ok"], ["p"]], alignments: [.left, .right, .right])
        #expect(table.lines() == ["host  ok  changed  status", "app1  12        3  ok", "p"])
    }

    @Test("with a width, a long last cell wraps between words under its own column")
    func wrapsTheLastColumn() {
        let long = "could not connect (connection refused); is sshd running and listening on that port?"
        let lines = TextTable([["app1", "UNREACHABLE", long]]).lines(width: 60)
        #expect(lines.count > 1)
        #expect(lines.allSatisfy { $0.count <= 60 })
        #expect(lines[0].hasPrefix("app1  UNREACHABLE  could"))
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(String(repeating: " ", count: 19)) && $0.dropFirst(19).first != " " })
        #expect(lines.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ").hasSuffix(long.components(separatedBy: "could ").last!))
        #expect(TextTable([["app1", "ok", long]]).lines() == ["app1  ok  " + long])
    }

    @Test("style sees each padded cell and its place; its codes do not move the columns")
    func style() {
        let table = TextTable([["A", "B"], ["ok", "1"]])
        let styled = table.lines { row, column, text in row > 0 && column == 0 ? "<\(text)>" : text }
        #expect(styled == ["A   B", "<ok>  1"])
    }
}
