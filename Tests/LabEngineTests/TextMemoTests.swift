import Synchronization
import LabSpec
import Testing
@testable import LabEngine

struct TextMemoTests {
    @Test("a text's value is made once, and the memo starts over past its limit")
    func madeOnce() {
        let memo = TextMemo<Int>(limit: 2)
        let made = Mutex(0)
        func value(_ text: String) -> Int { memo.value(for: text) { made.withLock { $0 += 1 }; return $0.count } }
        #expect(value("abc") == 3 && value("abc") == 3)
        #expect(made.withLock { $0 } == 1)
        _ = value("de")
        _ = value("f")  // the third text: the memo starts over
        _ = value("abc")
        #expect(made.withLock { $0 } == 4)
    }

    @Test("one shared template text renders each host's own values")
    func sharedTextsStayPerHost() throws {
        let hosts = ["a", "b"].map { HostFacts(name: $0, address: "10.0.0.1", roles: ["app"]) }
        let contexts = TemplateContext.forHosts(hosts, globals: [:])
        let origin = LabSpec.SourceLocation(file: "t", line: 1, column: 1)
        #expect(try contexts.map { try $0.render("{{host.name}} of {{#roles.app}}{{name}}{{/roles.app}}", origin: origin) } == ["a of ab", "b of ab"])
        #expect(try contexts.map { try $0.render("echo {{host.name}}", origin: origin, mode: .shell) } == ["echo a", "echo b"])
    }
}
