import Foundation
import Testing
@testable import LabSpec

/// Issue 12's corpus at the parser level: bad inventory JSON and bad playbook YAML, each with
/// the message it must give (naming the file and the place) and never a crash.
@Suite struct BadInputCorpusTests {
    struct JSONCase: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        /// Every one must be in the rendered error.
        var expected: [String]
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ expected: String...) {
            self.name = name
            self.bytes = Array(text.utf8)
            self.expected = expected
        }

        init(_ name: String, bytes: [UInt8], _ expected: String...) {
            self.name = name
            self.bytes = bytes
            self.expected = expected
        }
    }

    static let validHost = #"{ "name": "a", "address": "10.0.0.1", "roles": ["app"] }"#

    static let jsonCases: [JSONCase] = [
        JSONCase("line comment", "{\n  // the lab\n  \"hosts\": []\n}", "inventory.json: invalid JSON at line 2, column 3", "JSON has no comments"),
        JSONCase("block comment", "{ /* hosts */ \"hosts\": [] }", "line 1, column 3", "JSON has no comments"),
        JSONCase("comment after a value", "{ \"hosts\": [] // none\n}", "line 1, column 15", "no comments"),
        JSONCase("hash comment", "{\n# hosts\n\"hosts\": [] }", "line 2, column 1", "no comments"),
        JSONCase("trailing comma in a list", "{ \"hosts\": [\n  \(validHost),\n] }", "line 2, column \(validHost.count + 3)", "trailing comma before ']'"),
        JSONCase("trailing comma in an object", "{\n  \"name\": \"x\",\n  \"hosts\": [],\n}", "line 3, column 14", "trailing comma before '}'"),
        JSONCase("trailing comma in a nested object", "{ \"hosts\": [ { \"name\": \"a\", } ] }", "line 1, column 27", "trailing comma"),
        JSONCase("two commas", "{ \"hosts\": [1,,2] }", "line 1, column 15", "expected a value, found ','"),
        JSONCase("comma first in an object", "{ , \"hosts\": [] }", "line 1, column 3", "expected a key in double quotes"),
        JSONCase("single quotes", "{ 'hosts': [] }", "line 1, column 3", "expected a key in double quotes"),
        JSONCase("single-quoted value", "{ \"name\": 'lab' }", "line 1, column 11", "single quotes"),
        JSONCase("unquoted key", "{ hosts: [] }", "line 1, column 3", "key in double quotes"),
        JSONCase("missing comma between members", "{ \"name\": \"x\"\n  \"hosts\": [] }", "line 2, column 3", "missing comma"),
        JSONCase("missing comma between items", "{ \"hosts\": [ {} {} ] }", "line 1, column 17", "missing comma"),
        JSONCase("missing colon", "{ \"hosts\" [] }", "line 1, column 11", "expected ':'"),
        JSONCase("unterminated string", "{ \"name\": \"lab\n}", "line 1, column 11", "not closed on its line"),
        JSONCase("string never closed", "{ \"name\": \"lab", "line 1, column 11", "never closed"),
        JSONCase("bad escape (a Windows path)", #"{ "key": "C:\Users\me" }"#, "line 1, column 13", "not JSON", "C:/Users"),
        JSONCase("short unicode escape", #"{ "name": "\u12" }"#, "line 1, column 12", "four hex digits"),
        JSONCase("tab inside a string", "{ \"name\": \"a\tb\" }", "line 1, column 13", "control character"),
        JSONCase("leading zero", "{ \"port\": 022 }", "line 1, column 11", "leading zero"),
        JSONCase("a dot with no digits", "{ \"port\": 22. }", "line 1, column 11", "no digits after"),
        JSONCase("an exponent with no digits", "{ \"port\": 2e }", "line 1, column 11", "exponent"),
        JSONCase("a lone minus", "{ \"port\": - }", "line 1, column 11", "'-' not followed"),
        JSONCase("NaN", "{ \"port\": NaN }", "line 1, column 11", "NaN and Infinity are not JSON"),
        JSONCase("Infinity", "{ \"port\": Infinity }", "line 1, column 11", "NaN and Infinity"),
        JSONCase("a bare word", "{ \"name\": lab }", "line 1, column 11", "double quotes"),
        JSONCase("a misspelt true", "{ \"agent\": tru }", "line 1, column 12", "found a word"),
        JSONCase("two objects", "{}\n{}", "line 2, column 1", "after the end of the JSON value"),
        JSONCase("garbage after the object", "{ \"hosts\": [] } x", "line 1, column 17", "after the end"),
        JSONCase("unclosed object", "{ \"hosts\": []", "unexpected end of file", "not closed with '}'"),
        JSONCase("unclosed list", "{ \"hosts\": [", "unexpected end of file"),
        JSONCase("only a brace", "{", "unexpected end of file"),
        JSONCase("closing the wrong bracket", "{ \"hosts\": [ } ", "line 1, column 14", "expected a value, found '}'"),
        JSONCase("a value missing before a brace", "{ \"name\": }", "line 1, column 11", "expected a value, found '}'"),
        JSONCase("an empty file", "", "the file is empty"),
        JSONCase("only white space", "  \n\t\n", "the file is empty"),
        JSONCase("a byte order mark, then a trailing comma", "\u{FEFF}{ \"hosts\": [], }", "line 1, column 14", "trailing comma"),
        JSONCase("a column counted in characters", "{ \"name\": \"é\", }", "line 1, column 14", "trailing comma"),
        JSONCase("Latin-1 text", bytes: Array("{ \"name\": \"caf".utf8) + [0xE9] + Array("\" }".utf8), "line 1, column 15", "not UTF-8", "0xE9"),
        JSONCase("a bad byte on line 3", bytes: Array("{\n\"name\": \"x\",\n\"domain\": \"".utf8) + [0xFF] + Array("\" }".utf8), "line 3, column 12", "not UTF-8"),
        JSONCase("an overlong UTF-8 sequence", bytes: Array("{ \"a\": \"".utf8) + [0xC0, 0x80] + Array("\" }".utf8), "line 1, column 9", "not UTF-8"),
        JSONCase("a UTF-8 surrogate", bytes: Array("{ \"a\": \"".utf8) + [0xED, 0xA0, 0x80] + Array("\" }".utf8), "line 1, column 9", "not UTF-8"),
        JSONCase("a sequence cut at the end", bytes: Array("{ \"a\": \"".utf8) + [0xE2, 0x82], "line 1, column 9", "not UTF-8"),
        JSONCase("a lone continuation byte", bytes: [0x7B, 0x80, 0x7D], "line 1, column 2", "not UTF-8"),
        JSONCase("binary data", bytes: [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x00, 0xFF], "not UTF-8"),
        JSONCase("a NUL byte", bytes: Array("{ \"a\": 1 ".utf8) + [0x00] + Array("}".utf8), "line 1, column 10", "the byte 0x00"),
        JSONCase("nested 65 deep", String(repeating: "[", count: 65) + String(repeating: "]", count: 65), "line 1, column 65", "nested more than 64 levels"),
        JSONCase("nested 100,000 deep in lists", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), "nested more than 64 levels"),
        JSONCase("nested 100,000 deep in objects", String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000), "nested more than 64 levels"),
        JSONCase("nested 100,000 deep, never closed", String(repeating: "[", count: 100_000), "nested more than 64 levels"),
        // Valid JSON that is not a valid inventory: each names its field.
        JSONCase("a list at the top", "[]", "inventory.json"),
        JSONCase("connect_timeout zero", inventoryJSON(extra: #", "ssh": { "connect_timeout": 0 }"#), "ssh.connect_timeout"),
        JSONCase("connect_timeout huge", inventoryJSON(extra: #", "ssh": { "connect_timeout": 9223372036854775807 }"#), "ssh.connect_timeout"),
        JSONCase("connect_timeout past Int", inventoryJSON(extra: #", "ssh": { "connect_timeout": 1e300 }"#), "ssh.connect_timeout"),
        JSONCase("connect_timeout negative", inventoryJSON(extra: #", "ssh": { "connect_timeout": -5 }"#), "ssh.connect_timeout"),
        JSONCase("connect_timeout a string", inventoryJSON(extra: #", "ssh": { "connect_timeout": "10s" }"#), "ssh.connect_timeout"),
        JSONCase("port past 65535", inventoryJSON(hosts: #"{ "name": "a", "address": "10.0.0.1", "port": 70000, "roles": ["app"] }"#), "hosts[0].port"),
        JSONCase("port huge", inventoryJSON(hosts: #"{ "name": "a", "address": "10.0.0.1", "port": 99999999999999999999999, "roles": ["app"] }"#), "hosts[0].port"),
        JSONCase("a key given twice", inventoryJSON(hosts: #"{ "name": "a", "name": "b", "address": "10.0.0.1", "roles": ["app"] }"#), "hosts[0].name", "given twice"),
    ]

    @Test(arguments: jsonCases)
    func inventoryJSONIsRefusedSayingWhere(_ testCase: JSONCase) {
        do {
            _ = try InventoryLoader.parse(data: Data(testCase.bytes), file: "inventory.json", baseDirectory: testBase)
            Issue.record("accepted: \(testCase.name)")
        } catch {
            let text = error.description
            for expected in testCase.expected {
                #expect(text.contains(expected), "\(testCase.name): \(text)")
            }
            #expect(text.hasPrefix("inventory.json"), "\(text)")
            // Never Foundation's words, never a Swift enum dump.
            for foreign in ["The data couldn’t be read", "NSCocoaErrorDomain", "Error Domain", "dataCorrupted", "Swift.DecodingError", "invalid value"] {
                #expect(!text.contains(foreign), "\(testCase.name): \(text)")
            }
        }
    }

    @Test func validJSONStillParses() throws {
        // The strict check must not refuse what is valid: escapes, numbers, nesting, a BOM.
        let json = "\u{FEFF}" + inventoryJSON(extra: #", "ssh": { "connect_timeout": 1e1 }, "description": "caf\u00e9 \"x\" \\ \/ \t é""#)
        #expect(JSONSyntaxCheck.check(Data(json.utf8)) == nil)
        for valid in ["{}", "[]", "[[]]", "{\"a\":[{},{\"b\":[1,-0.5e-3,true,false,null]}]}", " { \"a\" : \"\\u00e9\\n\" } "] {
            #expect(JSONSyntaxCheck.check(Data(valid.utf8)) == nil, "\(valid)")
        }
        #expect(JSONSyntaxCheck.check(Data((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8)) == nil)
    }

    /// 50 MB of inventory: refused at once by size, with a sentence, not parsed for minutes.
    @Test func aFiftyMegabyteInventoryIsRefusedBySize() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-big-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let host = #"{ "name": "h", "address": "10.0.0.1", "roles": ["app"] },"#
        var text = "{ \"hosts\": [\n"
        text += String(repeating: host + "\n", count: 50 * 1_048_576 / (host.count + 1))
        text += host.dropLast() + "] }"
        let path = folder.appendingPathComponent("inventory.json").path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: InventoryError.self) { try InventoryLoader.load(path: path) }
        do {
            _ = try InventoryLoader.load(path: path)
        } catch {
            #expect(error.description.contains("the file is 50 MB; an inventory is a few kilobytes"), "\(error.description)")
        }
    }

    @Test func loadingNamesTheFileForPathProblems() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-paths-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("dir.json"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases: [(String, String)] = [
            ("", "the path is empty; pass -i PATH"),
            ("  ", "the path is empty"),
            (folder.appendingPathComponent("nope.json").path, "no such file"),
            (folder.appendingPathComponent("dir.json").path, "is a folder, not an inventory file"),
        ]
        for (path, expected) in cases {
            do {
                _ = try InventoryLoader.load(path: path)
                Issue.record("accepted \(path)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description)")
            }
        }
        if getuid() != 0 {
            let locked = folder.appendingPathComponent("locked.json").path
            try "{}".write(toFile: locked, atomically: false, encoding: .utf8)
            chmod(locked, 0)
            do { _ = try InventoryLoader.load(path: locked) } catch { #expect(error.description.contains("permissions?")) }
        }
    }

    @Test func aRelativeAppPathNamesTheFieldAndTheInventoryFolder() throws {
        let inventory = try parse(inventoryJSON(extra: #", "domain": "w.lab", "app": { "source": { "path": "app" } }"#))
        let problems = inventory.localPathProblems()
        #expect(problems.count == 1)
        let text = problems.map(\.description).joined()
        #expect(text.hasPrefix("app.source.path: the folder /srv/lab-inventories/app does not exist"), "\(text)")
        #expect(text.contains("relative to the inventory's folder, /srv/lab-inventories"), "\(text)")
        let here = try parse(inventoryJSON(extra: #", "domain": "w.lab", "app": { "source": { "path": "/tmp" } }"#))
        #expect(here.localPathProblems().isEmpty)
    }

    // MARK: - Playbooks

    struct YAMLCase: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var expected: [String]
        var testDescription: String { name }
        init(_ name: String, _ yaml: String, _ expected: String...) {
            self.name = name
            self.yaml = yaml
            self.expected = expected
        }
    }

    static let yamlCases: [YAMLCase] = [
        YAMLCase("duplicate step names", "- { name: a, hosts: all, command: 'true' }\n- { name: a, hosts: all, command: 'false' }\n",
                 "site.yml:2:3: two steps are named 'a' (lines 1 and 2)"),
        YAMLCase("duplicate handler names", "steps:\n  - { name: s, hosts: all, command: 'true', notify: h }\nhandlers:\n  - { name: h, command: 'true' }\n  - { name: h, command: 'false' }\n",
                 "site.yml:5:5: two handlers are named 'h'"),
        YAMLCase("command timeout Int.max", "- name: a\n  hosts: all\n  command: { run: 'true', timeout: 9223372036854775807 }\n",
                 "site.yml:3:36: 'timeout' of command must be between 1 and 86400 seconds; got 9223372036854775807"),
        YAMLCase("command timeout past Int", "- name: a\n  hosts: all\n  command: { run: 'true', timeout: 99999999999999999999999 }\n",
                 "site.yml:3:36", "must be a whole number"),
        YAMLCase("command timeout zero", "- name: a\n  hosts: all\n  command: { run: 'true', timeout: 0 }\n", "site.yml:3:36", "between 1 and 86400"),
        YAMLCase("command timeout negative", "- name: a\n  hosts: all\n  command: { run: 'true', timeout: -1 }\n", "site.yml:3:36", "whole number"),
        YAMLCase("command timeout with a unit", "- name: a\n  hosts: all\n  command: { run: 'true', timeout: 10s }\n", "site.yml:3:36", "no unit"),
        YAMLCase("wait_for timeout huge", "- name: a\n  hosts: all\n  wait_for: { port: 80, timeout: 100000000 }\n", "site.yml:3:34", "between 1 and 86400"),
        YAMLCase("wait_for port zero", "- name: a\n  hosts: all\n  wait_for: { port: 0 }\n", "site.yml:3:21", "between 1 and 65535"),
        YAMLCase("cache_valid_time huge", "- name: a\n  hosts: all\n  package: { name: nginx, cache_valid_time: 9223372036854775807 }\n", "site.yml:3:45", "cache_valid_time"),
        YAMLCase("tabs for indentation", "- name: a\n\thosts: all\n", "site.yml:2", "YAML syntax error"),
        YAMLCase("an unclosed flow list", "- name: a\n  hosts: [all\n", "site.yml:", "YAML syntax error"),
        YAMLCase("a scalar playbook", "hello\n", "site.yml:1:1", "a playbook must be a list of steps"),
        YAMLCase("JSON instead of a playbook", "{\"hosts\": []}\n", "site.yml:1:2", "unknown key 'hosts'"),
        YAMLCase("an empty playbook", "", "site.yml:1:1", "the playbook is empty"),
        YAMLCase("nesting 100,000 deep in flow lists", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n",
                 "site.yml:1:65", "nested more than 64 levels"),
        YAMLCase("nesting 100,000 deep in flow mappings", String(repeating: "{a: ", count: 100_000) + "1" + String(repeating: "}", count: 100_000) + "\n",
                 "site.yml:1:", "nested more than 64 levels"),
        YAMLCase("nesting 100,000 deep in block lists", String(repeating: "- ", count: 100_000) + "x\n", "site.yml:1:", "nested more than 64 levels"),
        YAMLCase("nesting by indentation", (0..<2000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n",
                 "site.yml:", "nested more than 64 levels"),
    ]

    @Test(arguments: yamlCases)
    func playbookYAMLIsRefusedSayingWhere(_ testCase: YAMLCase) {
        do {
            _ = try PlaybookParser.parse(yaml: testCase.yaml, file: "site.yml")
            Issue.record("accepted: \(testCase.name)")
        } catch {
            let text = error.description
            for expected in testCase.expected {
                #expect(text.contains(expected), "\(testCase.name): \(text)")
            }
        }
    }

    @Test func deepButReasonableYAMLStillParses() throws {
        // Brackets and dashes inside strings and comments do not count as nesting.
        let yaml = "- name: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\" # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n  hosts: all\n  command: 'echo {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'\n"
        #expect(PlaybookParser.excessiveNesting(in: yaml) == nil)
    }

    @Test func playbookFilesThatAreNotYAML() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-pb-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("site.yml"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = folder.appendingPathComponent("binary.yml").path
        FileManager.default.createFile(atPath: binary, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00, 0xFF]))
        let latin1 = folder.appendingPathComponent("latin1.yml").path
        FileManager.default.createFile(atPath: latin1, contents: Data("- name: caf".utf8 + [0xE9] + Data("\n".utf8)))
        let big = folder.appendingPathComponent("big.yml").path
        FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x23, count: 17 * 1_048_576))
        let cases: [(String, String)] = [
            (folder.appendingPathComponent("site.yml").path, "site.yml:1:1: is a folder, not a playbook"),
            (folder.appendingPathComponent("nope.yml").path, "nope.yml:1:1: no such playbook file"),
            (binary, "binary.yml:1:8: the file is not UTF-8 text (byte 0x00)"),
            (latin1, "latin1.yml:1:12: the file is not UTF-8 text (byte 0xE9)"),
            (big, "big.yml:1:1: the file is 17 MB; a playbook is a few kilobytes"),
        ]
        for (path, expected) in cases {
            do {
                _ = try PlaybookParser.parse(fileAt: path)
                Issue.record("accepted \(path)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description)")
                #expect(!error.description.contains("couldn’t"), "\(error.description)")
            }
        }
    }
}
