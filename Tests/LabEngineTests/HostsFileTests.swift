import Foundation
import LabEngine
import Testing

@Suite struct HostsFileTests {
    let block = HostsFileBlock(labName: "wayshub-lab", entries: [("198.18.42.10", "wayshub.lab")])

    @Test(arguments: [
        "",
        "127.0.0.1 localhost\n",
        "127.0.0.1 localhost",
        "127.0.0.1 localhost\r\n::1 localhost\r\n",
        "# only a comment\n\n",
    ])
    func applyThenRemoveGivesBackTheFileByteForByte(original: String) {
        let applied = block.applied(to: original)
        #expect(applied.contains("198.18.42.10 wayshub.lab"))
        #expect(applied.hasPrefix(original))
        // Applying again changes nothing.
        #expect(block.applied(to: applied) == applied)
        #expect(block.removed(from: applied) == original)
    }

    @Test func aChangedEntryIsReplacedInPlace() {
        let original = "127.0.0.1 localhost\n"
        let old = HostsFileBlock(labName: "wayshub-lab", entries: [("198.18.42.99", "wayshub.lab")])
        let withOld = old.applied(to: original) + "10.0.0.1 after\n"
        let updated = block.applied(to: withOld)
        #expect(!updated.contains("198.18.42.99"))
        #expect(updated.components(separatedBy: "wayshub.lab").count == 2)
        #expect(updated.hasSuffix("# END labctl wayshub-lab\n"))
        #expect(updated.contains("10.0.0.1 after\n"))
    }

    @Test func crlfFilesKeepTheirLineEnds() {
        let applied = block.applied(to: "127.0.0.1 localhost\r\n")
        #expect(applied == "127.0.0.1 localhost\r\n# BEGIN labctl wayshub-lab\r\n198.18.42.10 wayshub.lab\r\n# END labctl wayshub-lab\r\n")
    }

    @Test func updateWritesABackupAndKeepsTheMode() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-hosts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("hosts").path
        let original = Data("127.0.0.1 localhost".utf8)
        try original.write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        #expect(try block.update(fileAt: path, remove: false) == .written(backup: path + ".labctl-backup"))
        #expect(try block.update(fileAt: path, remove: false) == .unchanged)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o640)
        _ = try block.update(fileAt: path, remove: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original)
    }
}
