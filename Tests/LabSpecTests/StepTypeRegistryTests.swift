import Foundation
import Testing
@testable import LabSpec

/// The step types are written once, in `StepTypeSpec.all`: the parser, its messages and the
/// reference in docs/playbooks.md come from it, and these tests hold the three together.
struct StepTypeRegistryTests {
    static let docsFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/playbooks.md")

    @Test("docs/playbooks.md has each step type's section (heading, summary, argument table) as the registry writes it, and no other")
    func docsMatch() throws {
        let text = try String(contentsOf: Self.docsFile, encoding: .utf8)
        for spec in StepTypeSpec.all {
            #expect(text.contains(spec.docsSection + "\n"), "docs/playbooks.md should have, as written here:\n\(spec.docsSection)")
        }
        let start = try #require(text.range(of: "## Step types\n"))
        let section = text[start.upperBound...]
        let end = section.range(of: "\n## ")?.lowerBound ?? section.endIndex
        let headings = section[..<end].components(separatedBy: "\n").filter { $0.hasPrefix("### `") }
        #expect(headings == StepTypeSpec.all.map { "### `\($0.name)`" })
    }

    /// The value a test step gives an argument of this kind; template kinds carry a variable
    /// named after the argument, to find where it went.
    static func value(_ argument: StepTypeSpec.Argument) -> String {
        let variable = "\"x {mark} {{v.\(argument.name)}}\""
        switch argument.kind {
        case .template, .regex: return variable
        case .templates: return "[\(variable)]"
        case .mapping: return "{ A: \(variable) }"
        case .names: return "[node_modules]"
        case .integer: return "80"
        case .boolean: return "true"
        case .choice(let values): return values[0]
        case .mode: return "\"0644\""
        }
    }

    /// What a step of this type needs at least: every required argument, and of arguments
    /// required "unless `other`", the first.
    static func base(_ spec: StepTypeSpec) -> [StepTypeSpec.Argument] {
        var chosen: [StepTypeSpec.Argument] = []
        for argument in spec.arguments {
            guard let required = argument.required else { continue }
            if required.hasPrefix("unless") {
                let others = required.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
                if chosen.contains(where: { others.contains($0.name) }) { continue }
            }
            chosen.append(argument)
        }
        return chosen
    }

    static func step(_ spec: StepTypeSpec, _ arguments: [StepTypeSpec.Argument]) -> String {
        var yaml = "steps:\n  - name: s\n    hosts: all\n"
        if spec.arguments.isEmpty { return yaml + "    \(spec.name): true\n" }
        yaml += "    \(spec.name):\n"
        for argument in arguments { yaml += "      \(argument.name): \(value(argument))\n" }
        return yaml
    }

    @Test("every argument of every step type parses, and exactly the template ones are templates")
    func everyArgumentParses() throws {
        for spec in StepTypeSpec.all {
            let base = Self.base(spec)
            var variants = [base]
            for argument in spec.arguments where !base.contains(argument) {
                // An argument that stands in for another ("unless `content`") replaces it.
                let others = (argument.required ?? "").split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
                var variant = base.filter { !others.contains($0.name) }
                if argument.name == "insert_before" { variant.removeAll { $0.name == "insert_after" } }
                variant.append(argument)
                variants.append(variant)
            }
            for variant in variants {
                let yaml = Self.step(spec, variant)
                let playbook: Playbook
                do {
                    playbook = try PlaybookParser.parse(yaml: yaml, file: "t.yml")
                } catch {
                    Issue.record("\(spec.name) with \(variant.map(\.name)): \(error.issues.map(\.description))\n\(yaml)")
                    continue
                }
                let action = try #require(playbook.steps.first?.action)
                #expect(action.typeName == spec.name)
                let rendered = (action.templateArguments + [action.templateFile].compactMap { $0 }).map(\.value).joined(separator: "\n")
                for argument in variant {
                    #expect(rendered.contains("{{v.\(argument.name)}}") == argument.isTemplate,
                            "\(spec.name).\(argument.name): the registry says template \(argument.isTemplate)")
                }
            }
        }
    }

    @Test("the parser knows the registry's types and arguments, and nothing else")
    func parserTable() {
        #expect(Set(PlaybookParser.stepTypes.keys) == Set(StepTypeSpec.all.map(\.name)))
        for spec in StepTypeSpec.all {
            #expect(PlaybookParser.stepTypes[spec.name] == spec.argumentNames)
            #expect(Set(spec.argumentNames).count == spec.arguments.count, "\(spec.name) names an argument twice")
        }
        let unknown = (try? PlaybookParser.parse(yaml: "steps:\n  - name: s\n    hosts: all\n    pakage: nginx\n", file: "t.yml")) == nil
        #expect(unknown)
    }
}
