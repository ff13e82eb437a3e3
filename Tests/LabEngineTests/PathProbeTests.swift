import Foundation
import SSH
import Testing
@testable import LabEngine

/// The probe's shared paths section: what it prints is read back as data here, and it runs
/// against real files with awkward names through this machine's sh.
@Suite struct PathProbeParsingTests {
    let nonce = "n0"

    func output(_ lines: [String]) -> String { lines.joined(separator: "\n") + "\n" }

    @Test func toolsOutputIsMatchedToPathsByTheOrderPrintedBeforeIt() {
        let script = ProbeScript(
            steps: [
                (0, FileOperation(path: "/a", content: "")),
                (1, DirectoryOperation(path: "/d")),
                (2, LineOperation(path: "/b", line: "x")),
            ], nonce: nonce)
        let facts = script.parse(output([
            "@@n0 paths",
            "0.kind=file", "0.parent=dir",
            "1.kind=dir",
            "2.kind=file", "2.parent=dir", "2.content.b64=eAo=",
            "@@n0 stat", " 0 1 2", "root:root:644", "root:adm:755", "www-data:www-data:600",
            "@@n0 sha256", " 0", "\\" + String(repeating: "ab", count: 32) + "  /a",
            "@@n0 paths end",
            "@@n0 begin 0", "@@n0 end 0 0",
            "@@n0 begin 1", "@@n0 end 1 0",
            "@@n0 begin 2", "@@n0 end 2 0",
        ]))
        #expect(facts[0]?.values == ["kind": "file", "parent": "dir", "stat": "root:root:644", "sha256": String(repeating: "ab", count: 32), "probe.status": "0"])
        #expect(facts[1]?.values == ["kind": "dir", "stat": "root:adm:755", "probe.status": "0"])
        #expect(facts[2]?["stat"] == "www-data:www-data:600")
        #expect(facts[2]?.text("content") == "x\n")
        #expect(facts[2]?["sha256"] == nil, "a line step did not ask for a checksum")
    }

    @Test func aToolPrintingFewerLinesThanPathsGivesNoPathThatFact() {
        // A file removed between the shell's test and stat's look: stat prints one line fewer.
        let script = ProbeScript(steps: [(0, DirectoryOperation(path: "/x")), (1, DirectoryOperation(path: "/y"))], nonce: nonce)
        let facts = script.parse(output([
            "@@n0 paths", "0.kind=dir", "1.kind=dir", "@@n0 stat", " 0 1", "root:root:755", "@@n0 paths end",
            "@@n0 begin 0", "@@n0 end 0 0", "@@n0 begin 1", "@@n0 end 1 0",
        ]))
        #expect(facts[0]?["stat"] == nil && facts[1]?["stat"] == nil)
        #expect(facts[0]?["kind"] == "dir")
    }

    @Test func anUnfinishedPathsSectionLeavesItsStepsUnreported() {
        // The shell died inside the paths section: steps that needed it get no facts (the
        // runner then fails them), a step with its own probe only is still read.
        let script = ProbeScript(steps: [(0, DirectoryOperation(path: "/x")), (1, CommandOperation(run: "true", creates: "/s"))], nonce: nonce)
        let facts = script.parse(output([
            "@@n0 paths", "0.kind=dir", "@@n0 stat", " 0",
            "@@n0 begin 0", "@@n0 end 0 0", "@@n0 begin 1", "creates=no", "@@n0 end 1 0",
        ]))
        #expect(facts[0] == nil)
        #expect(facts[1]?["creates"] == "no")
    }

    @Test func aPathAskedForByManyStepsIsProbedOnceWithEverythingTheyWant() {
        let shared = "/etc/nginx/nginx.conf"
        let script = ProbeScript(
            steps: [
                (0, ManagedBlockOperation(path: shared, block: "x", marker: "# {mark}")),
                (1, FileOperation(path: shared, content: "y", options: PlanOptions(diff: true))),
                (2, DirectoryOperation(path: "/etc/nginx")),
            ], nonce: nonce)
        #expect(script.script.components(separatedBy: "p=\(shared)\n").count - 1 == 1, "one test of the shared path")
        #expect(script.script.contains("sha256sum"))
        // The block step wants the whole content, so the whole file is read once; the file
        // step's own limit still applies to what it gets.
        #expect(script.script.contains("base64 -w0 < \"$p\""))
        #expect(!script.script.contains("head -c"))
        let twoDiffs = ProbeScript(
            steps: [(0, FileOperation(path: shared, content: "y", options: PlanOptions(diff: true))), (1, FileOperation(path: shared, content: "z", options: PlanOptions(diff: true)))],
            nonce: nonce)
        #expect(twoDiffs.script.components(separatedBy: "head -c 1048577").count - 1 == 1, "limited steps only: the limited read, once")
        let large = Data(repeating: 0x61, count: (1 << 20) + 1).base64EncodedString()
        let facts = script.parse(output([
            "@@n0 paths", "0.kind=file", "0.parent=dir", "0.content.b64=\(large)", "1.kind=dir",
            "@@n0 stat", " 0 1", "root:root:644", "root:root:755",
            "@@n0 sha256", " 0", String(repeating: "0", count: 64) + "  " + shared,
            "@@n0 paths end",
            "@@n0 begin 0", "@@n0 end 0 0", "@@n0 begin 1", "@@n0 end 1 0", "@@n0 begin 2", "@@n0 end 2 0",
        ]))
        #expect(facts[0]?.bytes("content")?.count == (1 << 20) + 1)
        #expect(facts[1]?["content"] == "large" && facts[1]?["content.b64"] == nil)
        #expect(facts[1]?["sha256"] == String(repeating: "0", count: 64))
        #expect(facts[2]?["stat"] == "root:root:755")
    }

    @Test func stepsWithoutPathsGetNoPathsSection() {
        let script = ProbeScript(steps: [(0, CommandOperation(run: "true", creates: "/s"))], nonce: nonce)
        #expect(!script.script.contains("paths"))
        #expect(!script.script.contains("stat "))
    }
}

@Suite struct PathProbeShellTests {
    /// Names that break naive parsing: newline, backslash, quotes, a leading dash, spaces.
    static let awkwardNames = ["plain", "with space", "line\nbreak", "back\\slash", "it's", "-n", "a\"b", "ünï"]

    @Test(arguments: awkwardNames)
    func everyKindOfPathIsReportedInOneProbe(_ name: String) async throws {
        let scratch = Scratch()
        scratch.write("\(name)/file", "hello\n")
        scratch.write("\(name)/target", "linked\n")
        let dir = scratch.file(name)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "target")
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "nowhere")
        #expect(await shell("mkfifo " + Shell.quote(dir + "/fifo") + " && chmod 750 " + Shell.quote(dir)).status == 0)
        let options = PlanOptions(diff: true)
        let steps: [(id: Int, operation: any StepOperation)] = [
            (0, FileOperation(path: dir + "/file", content: "x", options: options)),
            (1, FileOperation(path: dir + "/link", content: "x")),
            (2, FileOperation(path: dir + "/dangling", content: "x")),
            (3, FileOperation(path: dir + "/missing/file", content: "x")),
            (4, DirectoryOperation(path: dir)),
            (5, LineOperation(path: dir + "/fifo", line: "x")),
            (6, LineOperation(path: dir + "/file", line: "x")),
        ]
        let script = ProbeScript(steps: steps)
        let result = await shell(script.script)
        #expect(result.status == 0)
        let facts = script.parse(result.stdout)
        #expect(facts.count == steps.count)
        #expect(facts[0]?.values == [
            "kind": "file", "stat": "root:root:644", "sha256": SHA256Digest.hex("hello\n"), "parent": "dir",
            "content.b64": Data("hello\n".utf8).base64EncodedString(), "probe.status": "0",
        ])
        #expect(facts[1]?["kind"] == "file")
        #expect(facts[1]?["target"] == dir + "/target")
        #expect(facts[1]?["sha256"] == SHA256Digest.hex("linked\n"))
        #expect(facts[2]?["kind"] == "dangling")
        #expect(facts[3]?["kind"] == "none" && facts[3]?["parent"] == "none")
        #expect(facts[4]?["kind"] == "dir" && facts[4]?["stat"] == "root:root:750")
        #expect(facts[5]?["kind"] == "other" && facts[5]?["stat"] == nil)
        #expect(facts[6]?.text("content") == "hello\n" && facts[6]?["sha256"] == nil)
    }

    @Test func manyFileStepsCostOneStatAndOneChecksum() async throws {
        // Stand-in stat and sha256sum first in PATH log each call, then run the real tools.
        let scratch = Scratch()
        for tool in ["stat", "sha256sum"] {
            scratch.write("bin/\(tool)", "#!/bin/sh\necho called >> \"$0.log\"\nexec /usr/bin/\(tool) \"$@\"\n")
        }
        #expect(await shell("chmod +x " + Shell.quote(scratch.file("bin/stat")) + " " + Shell.quote(scratch.file("bin/sha256sum"))).status == 0)
        var steps: [(id: Int, operation: any StepOperation)] = []
        for index in 0..<6 {
            scratch.write("files/\(index).conf", "n = \(index)\n")
            steps.append((index, FileOperation(path: scratch.file("files/\(index).conf"), content: "n = \(index)\n", mode: 0o644)))
        }
        steps.append((6, DirectoryOperation(path: scratch.file("files"))))
        let script = ProbeScript(steps: steps)
        let result = await shell("PATH=" + Shell.quote(scratch.file("bin")) + ":$PATH; " + script.script)
        let facts = script.parse(result.stdout)
        #expect(scratch.read("bin/stat.log") == "called\n")
        #expect(scratch.read("bin/sha256sum.log") == "called\n")
        for (id, operation) in steps {
            let plan = try operation.plan(try #require(facts[id]))
            #expect(plan == .unchanged, "step \(id): \(plan.summary)")
        }
    }

    @Test func aFileTheLoginCannotReadCostsNoOtherFileItsChecksum() async throws {
        // As nobody (no become): sha256sum given an unreadable file would print a line fewer.
        let scratch = Scratch()
        scratch.write("open", "a\n")
        scratch.write("closed", "b\n")
        #expect(await shell("chmod 755 " + Shell.quote(scratch.path) + " && chmod 600 " + Shell.quote(scratch.file("closed"))).status == 0)
        let steps: [(id: Int, operation: any StepOperation)] = [
            (0, FileOperation(path: scratch.file("open"), content: "a\n")),
            (1, FileOperation(path: scratch.file("closed"), content: "b\n")),
            (2, LineOperation(path: scratch.file("closed"), line: "c")),
        ]
        let script = ProbeScript(steps: steps)
        let result = await shell("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c " + Shell.quote(script.script))
        let facts = script.parse(result.stdout)
        #expect(facts[0]?["sha256"] == SHA256Digest.hex("a\n"))
        #expect(try steps[0].operation.plan(try #require(facts[0])) == .unchanged)
        #expect(facts[1]?["kind"] == "file" && facts[1]?["sha256"] == nil)
        #expect(facts[2]?["content.b64"] == nil)
        #expect(throws: StepFailure("could not read \(scratch.file("closed")) on the host")) { try steps[2].operation.plan(try #require(facts[2])) }
    }

    @Test func aDiffReadsAtMostOneByteOverTheLimit() async throws {
        let scratch = Scratch()
        scratch.write("big", String(repeating: "a", count: (1 << 20) + 10))
        let op = FileOperation(path: scratch.file("big"), content: "small\n", options: PlanOptions(diff: true))
        let facts = await probe(op)
        #expect(facts["content"] == "large")
        #expect(facts["content.b64"] == nil)
        let plan = try op.plan(facts)
        #expect(plan.diff?.contains("larger than 1 MiB") == true)
    }
}
