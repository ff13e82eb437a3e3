import Foundation
import LabSpec
import Testing
@testable import LabEngine

/// Where a `{{name}}` stands in shell text, and what labctl makes of it, as data.
@Suite struct ShellTemplateQuotingTests {
    @Test(arguments: [
        ("echo {{x}}", "echo {{x}}"),
        ("echo '{{x}}'", "echo ''{{x}}''"),
        ("echo 'a {{x}} b'", "echo 'a '{{x}}' b'"),
        ("echo \"a {{x}} b\"", "echo \"a \"{{x}}\" b\""),
        ("echo \"$(cat {{x}})\"", "echo \"$(cat {{x}})\""),
        ("echo \"$(echo '{{x}}')\"", "echo \"$(echo ''{{x}}'')\""),
        ("echo `cat {{x}}`", "echo `cat {{x}}`"),
        ("echo \\'{{x}}", "echo \\'{{x}}"),
        // In single quotes a backslash is a plain character: the quote after it closes them.
        ("echo '\\'{{x}}", "echo '\\'{{x}}"),
        ("echo $#{{x}}", "echo $#{{x}}"),
        ("echo {{{x}}} '{{&x}}'", "echo {{{x}}} '{{&x}}'"),
        ("echo '{{#l}}{{.}} {{/l}}'", "echo '{{#l}}'{{.}}' {{/l}}'"),
        ("case $v in a) echo '{{x}}';; esac", "case $v in a) echo ''{{x}}'';; esac"),
        ("x=$( (echo a) ; echo '{{x}}')", "x=$( (echo a) ; echo ''{{x}}'')"),
        ("cat <<'EOF'\nbody\nEOF\necho '{{x}}'", "cat <<'EOF'\nbody\nEOF\necho ''{{x}}''"),
    ])
    func valuesMoveOutOfTheAuthorsQuotes(template: String, prepared: String) {
        let result = ShellTemplateQuoting.prepare(template)
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.text == prepared)
    }

    @Test(arguments: [
        "true # {{x}}",
        "cat <<EOF\n{{x}}\nEOF",
        "cat <<-'END'\n\tline {{x}}\n\tEND",
        "echo ${v:-{{x}}}",
        "echo \"${v:-{{x}}}\"",
        "echo $'a{{x}}'",
        "echo {{#l}}'{{/l}}",
    ])
    func placesNoQuotingCanHoldAreRefused(template: String) {
        #expect(!ShellTemplateQuoting.prepare(template).problems.isEmpty)
    }

    @Test func aRefusalSaysWhereAndWhy() throws {
        let problem = try #require(ShellTemplateQuoting.prepare("echo ok\ntrue # {{app.name}}").problems.first)
        #expect(problem.line == 2 && problem.column == 8)
        #expect(problem.message.contains("{{app.name}}") && problem.message.contains("comment"))
    }

    @Test func renderedValuesStayOneWordInTheAuthorsQuotes() async throws {
        let context = TemplateContext(["x": .string("a'b; $(touch /tmp/never) \"c\"\nd")])
        let origin = SourceLocation(file: "t", line: 1, column: 1)
        for template in ["printf '%s' '<{{x}}>'", "printf '%s' \"<{{x}}>\"", "printf '%s' \\<{{x}}\\>"] {
            let script = try context.render(template, origin: origin, mode: .shell)
            let result = await shell(script)
            #expect(result.status == 0)
            #expect(result.stdout == "<a'b; $(touch /tmp/never) \"c\"\nd>", "\(template) -> \(script)")
        }
    }
}
