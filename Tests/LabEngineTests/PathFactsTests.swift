import Foundation
import SSH
import Testing
@testable import LabEngine

/// The path probe's `key=value` facts read into one typed value: what every file-like plan reads.
@Suite struct PathFactsTests {
    @Test func aFileWithEverythingAsked() {
        let found = PathFacts(Facts([
            "kind": "file", "stat": "www-data:adm:640", "sha256": "ab12", "parent": "dir",
            "content.b64": Data("hi\n".utf8).base64EncodedString(), "target": "/etc/nginx/sites-available/lab",
        ]))
        #expect(found.kind == .file)
        #expect(found.attributes == PathFacts.Attributes(owner: "www-data", group: "adm", mode: 0o640))
        #expect(found.sha256 == "ab12")
        #expect(found.parentExists == true)
        #expect(found.content == .bytes(Array("hi\n".utf8)))
        #expect(found.text == "hi\n")
        #expect(found.writePath(for: "/etc/nginx/sites-enabled/lab") == "/etc/nginx/sites-available/lab")
    }

    @Test func whatWasNotPrintedIsNotKnown() {
        let found = PathFacts(Facts([:]))
        #expect(found.kind == .missing)
        #expect(found.attributes == nil)
        #expect(found.sha256 == nil)
        #expect(found.parentExists == nil)
        #expect(found.content == .unread)
        #expect(found.writePath(for: "/a") == "/a")
        #expect(PathFacts(Facts(["kind": "socket?"])).kind == .missing)
        #expect(PathFacts(Facts(["kind": "dir", "parent": "none"])).parentExists == false)
        #expect(PathFacts(Facts(["content": "large"])).content == .tooLarge)
    }

    @Test func aStatLineThatIsNotThreeFieldsGivesNoAttributes() {
        #expect(PathFacts(Facts(["kind": "file", "stat": "root:root"])).attributes == nil)
        #expect(PathFacts(Facts(["kind": "file", "stat": "root:root:9z"])).attributes == nil)
        #expect(PathFacts(Facts(["kind": "dir", "stat": "root:root:2755"])).attributes?.mode == 0o2755)
    }

    /// The probe's real output, parsed by the probe script, gives the same typed value.
    @Test func fromTheProbeScriptsOwnOutput() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pathfacts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/f"
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        _ = chmod(path, 0o600)
        let operation = FileOperation(path: path, content: "x")
        let script = ProbeScript(steps: [(id: 0, operation: operation)])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(script.script.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let facts = try #require(script.parse(String(decoding: data, as: UTF8.self))[0])
        let found = PathFacts(facts)
        #expect(found.kind == .file)
        #expect(found.attributes?.mode == 0o600)
        #expect(found.sha256 == SHA256Digest.hex(Array("x".utf8)))
        #expect(found.parentExists == true)
        #expect(try operation.plan(facts) == .unchanged)
        #expect(try FileOperation(path: path, content: "x", mode: 0o644).plan(facts).commands == ["chmod -- 0644 \(Shell.quote(path))"])
    }
}
