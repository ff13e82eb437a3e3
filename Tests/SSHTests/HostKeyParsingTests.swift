import Foundation
import Testing
import TestSupport

@testable import SSH

/// known_hosts parsing, host matching and algorithm order on bytes: no sshd.
@Suite struct HostKeyTestsOnBytes {
    static func sshString(_ bytes: [UInt8]) -> [UInt8] {
        let n = UInt32(bytes.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + bytes
    }

    static func ed25519Blob(_ seed: UInt8) -> [UInt8] {
        sshString(Array("ssh-ed25519".utf8)) + sshString([UInt8](repeating: seed, count: 32))
    }

    static func ecdsaBlob(_ curve: Int, _ seed: UInt8) -> [UInt8] {
        let length = [256: 65, 384: 97, 521: 133][curve]!
        return sshString(Array("ecdsa-sha2-nistp\(curve)".utf8)) + sshString(Array("nistp\(curve)".utf8))
            + sshString([0x04] + [UInt8](repeating: seed, count: length - 1))
    }

    static func b64(_ blob: [UInt8]) -> String { Data(blob).base64EncodedString() }

    static func file(_ lines: [[UInt8]]) -> KnownHostsFile {
        KnownHostsFile(path: "/kh", contents: lines.flatMap { $0 + [0x0A] })
    }

    static func line(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func eachBadLineIsIgnoredAndNamedByItsNumber() {
        let ed = Self.b64(Self.ed25519Blob(1))
        let truncated = Self.b64(Array(Self.ed25519Blob(1).dropLast(3)))
        let lines: [[UInt8]] = [
            Self.line("# caf") + [0xE9],
            Self.line("h ssh-ed25519 !!!!"),
            Self.line("h ssh-ed25519"),
            Self.line("h"),
            Self.line("h ecdsa-sha2-nistp256 \(ed)"),
            Self.line("@bogus h ssh-ed25519 \(ed)"),
            Self.line("h") + [0xE9] + Self.line(" ssh-ed25519 \(ed) comm") + [0xE9, 0x6E, 0x74],
            Self.line("h ssh-foo \(ed)"),
            Self.line("|1|abc|def ssh-ed25519 \(ed)"),
            [],
            Self.line("@revoked h ssh-ed25519 \(ed)"),
            Self.line("h ssh-ed25519 \(truncated)"),
            Self.line("   \t# indented comment"),
            Self.line("h ssh-ed25519 \(ed)\r"),
        ]
        let parsed = Self.file(lines)
        #expect(parsed.warnings == [
            "known_hosts /kh line 2: the key is not valid base64; ignored",
            "known_hosts /kh line 3: too few fields (no key after the key type); ignored",
            "known_hosts /kh line 4: too few fields (a host field and no key); ignored",
            "known_hosts /kh line 5: the key type field says ecdsa-sha2-nistp256 but the key is ssh-ed25519; ignored",
            "known_hosts /kh line 6: unknown marker \"@bogus\"; ignored",
            "known_hosts /kh line 8: unknown key type \"ssh-foo\"; ignored",
            "known_hosts /kh line 9: the hashed host field is not |1|salt|hash with a 20-byte base64 salt; ignored",
            "known_hosts /kh line 12: the ssh-ed25519 key is malformed; ignored",
        ])
        #expect(parsed.entries.map(\.line) == [7, 11, 14])
        #expect(parsed.entries.map(\.marker) == [.none, .revoked, .none])
        #expect(parsed.entries[0].hosts == [0x68, 0xE9])
    }

    @Test func patternsMatchAsOpenSSHDoes() {
        func list(_ name: String, _ patterns: String) -> Int {
            HostPattern.matchList(name: Array(name.utf8), patterns: Array(patterns.utf8)[...])
        }
        #expect(list("host.example.com", "*.example.com") == 1)
        #expect(list("host.example.com", "!host.example.com,*.example.com") == -1)
        #expect(list("host.example.com", "*.example.com,!host.example.com") == -1)
        #expect(list("host.example.com", "other.example.com") == 0)
        #expect(list("host.example.com", "!other.example.com") == 0)
        #expect(list("host.example.com", "h?st.example.com") == 1)
        #expect(list("host.example.com", "h?st") == 0)
        #expect(list("aXbYc", "a*b*c") == 1)
        #expect(list("ab", "a**b") == 1)
        #expect(list("[10.0.0.1]:2222", "[10.0.0.?]:*") == 1)
        #expect(list("[10.0.0.1]:2222", "10.0.0.1") == 0)
        #expect(list("host", "HOST") == 1)
        #expect(HostPattern.lookupName(host: "Host.Example.COM", port: 22) == Array("host.example.com".utf8))
        #expect(HostPattern.lookupName(host: "h", port: 2222) == Array("[h]:2222".utf8))
        #expect(HostPattern.matches(name: HostPattern.lookupName(host: "HOST.example.com", port: 22),
                                    field: Array("*.EXAMPLE.com".utf8)[...], salt: nil))
    }

    @Test func hashedNamesMatchWhatSSHKeygenWrites() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = folder.file("known_hosts")
        let ed = Self.b64(Self.ed25519Blob(7))
        try "host.example.com ssh-ed25519 \(ed)\n[h]:2222 ssh-ed25519 \(ed)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try runLocal(["ssh-keygen", "-H", "-f", path])
        let parsed = try KnownHostsFile.read(path: path)
        #expect(parsed.warnings.isEmpty)
        #expect(parsed.entries.count == 2)
        #expect(parsed.entries.allSatisfy { $0.salt?.count == 20 })
        #expect(parsed.entries[0].matches(HostPattern.lookupName(host: "Host.example.com", port: 22)))
        #expect(!parsed.entries[0].matches(HostPattern.lookupName(host: "other.example.com", port: 22)))
        #expect(parsed.entries[1].matches(HostPattern.lookupName(host: "h", port: 2222)))
        #expect(!parsed.entries[1].matches(HostPattern.lookupName(host: "h", port: 22)))
    }

    @Test func verdicts() {
        let key = Self.ed25519Blob(1)
        let other = Self.ed25519Blob(2)
        let third = Self.ed25519Blob(3)
        let ecdsa = Self.ecdsaBlob(256, 4)
        func verdict(_ lines: [String], port: Int = 2222) -> KnownHostsFile.Verdict {
            Self.file(lines.map(Self.line)).verify(host: "h", port: port, key: key)
        }
        let ours = "ssh-ed25519 \(Self.b64(key))"
        #expect(verdict(["[h]:2222 \(ours)"]) == .known(line: 1))
        #expect(verdict(["[H]:2222 \(ours)"]) == .known(line: 1))
        #expect(verdict(["[h]:2223 \(ours)"]) == .unknown)
        #expect(verdict(["h \(ours)"]) == .known(line: 1))
        #expect(verdict(["h \(ours)"], port: 22) == .known(line: 1))
        #expect(verdict(["[h]:22 \(ours)"], port: 22) == .unknown)
        // A bare-name entry with another key leaves a non-22 port unknown, as in OpenSSH.
        #expect(verdict(["h ssh-ed25519 \(Self.b64(other))"]) == .unknown)
        // The last other key is the offending one (check_hostkeys_by_key_or_type).
        #expect(verdict(["[h]:2222 ssh-ed25519 \(Self.b64(other))", "[h]:2222 ssh-ed25519 \(Self.b64(third))"])
            == .changed(line: 2, keyType: "ssh-ed25519", fingerprint: SHA256Digest.opensshFingerprint(third)))
        #expect(verdict(["[h]:2222 ssh-ed25519 \(Self.b64(other))", "[h]:2222 ecdsa-sha2-nistp256 \(Self.b64(ecdsa))"])
            == .changed(line: 1, keyType: "ssh-ed25519", fingerprint: SHA256Digest.opensshFingerprint(other)))
        #expect(verdict(["[h]:2222 ecdsa-sha2-nistp256 \(Self.b64(ecdsa))"])
            == .changed(line: 1, keyType: "ecdsa-sha2-nistp256", fingerprint: SHA256Digest.opensshFingerprint(ecdsa)))
        #expect(verdict(["[h]:2222 ssh-ed25519 \(Self.b64(other))", "[h]:2222 \(ours)"]) == .known(line: 2))
        #expect(verdict(["[h]:2222 \(ours)", "@revoked * \(ours)"]) == .revoked(line: 2))
        #expect(verdict(["@revoked [h]:2222 ssh-ed25519 \(Self.b64(other))", "[h]:2222 \(ours)"]) == .known(line: 2))
        #expect(verdict(["@cert-authority [h]:2222 \(ours)"]) == .unknown)
        #expect(verdict(["[h]:*,![h]:2222 \(ours)"]) == .unknown)
        // Excluded as [h]:2222, but the bare name h still matches "*".
        #expect(verdict(["*,![h]:2222 \(ours)"]) == .known(line: 1))
    }

    @Test func hostKeyAlgorithmsPutTheKnownTypesFirst() {
        func order(_ lines: [String]) -> [String] {
            Self.file(lines.map(Self.line)).hostKeyAlgorithms(host: "h", port: 22)
        }
        let defaults = KnownHostsFile.defaultHostKeyAlgorithms
        let ed = "ssh-ed25519 \(Self.b64(Self.ed25519Blob(1)))"
        let p384 = "ecdsa-sha2-nistp384 \(Self.b64(Self.ecdsaBlob(384, 1)))"
        let p256 = "ecdsa-sha2-nistp256 \(Self.b64(Self.ecdsaBlob(256, 1)))"
        #expect(defaults.first == "ssh-ed25519")
        #expect(order([]) == defaults)
        #expect(order(["other \(p384)"]) == defaults)
        #expect(order(["h \(p384)"]) == ["ecdsa-sha2-nistp384", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp521", "ssh-rsa"])
        #expect(order(["h \(p256)"]) == ["ecdsa-sha2-nistp256", "ssh-ed25519", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"])
        #expect(order(["h \(p384)", "h \(p256)"]) == ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-ed25519", "ecdsa-sha2-nistp521", "ssh-rsa"])
        // The best algorithm's type is listed: the default order as it is (order_hostkeyalgs).
        #expect(order(["h \(p384)", "h \(ed)"]) == defaults)
        #expect(order(["@revoked h \(p384)"]) == defaults)
        #expect(order(["@cert-authority h \(p384)"]) == defaults)
    }

    @Test func base64AsOpenSSHReadsIt() {
        func decode(_ text: String) -> [UInt8]? { Base64.decode(Array(text.utf8)) }
        #expect(decode("AAAA") == [0, 0, 0])
        #expect(decode("AAA=") == [0, 0])
        #expect(decode("AA==") == [0])
        #expect(decode("AA==\r") == [0])
        #expect(decode("AAA") == nil)
        #expect(decode("AB==") == nil)
        #expect(decode("AA=") == nil)
        #expect(decode("AA==A") == nil)
        #expect(decode("A!AA") == nil)
        #expect(decode("") == [])
    }

    @Test("a file read again unchanged is not parsed again, and any change is seen at once")
    func readsOncePerVersion() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = folder.file("known_hosts")
        let first = "a.example ssh-ed25519 \(Self.b64(Self.ed25519Blob(1)))\n"
        try first.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try KnownHostsFile.read(path: path).entries.count == 1)
        #expect(try KnownHostsFile.read(path: path).entries.count == 1)
        // An append (what accept-new does).
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("b.example ssh-ed25519 \(Self.b64(Self.ed25519Blob(2)))\n".utf8))
        try handle.close()
        #expect(try KnownHostsFile.read(path: path).entries.map(\.line) == [1, 2])
        // The same size, another key, written in place: still seen.
        let other = "a.example ssh-ed25519 \(Self.b64(Self.ed25519Blob(9)))\n"
        try other.write(toFile: path, atomically: false, encoding: .utf8)
        let again = try KnownHostsFile.read(path: path)
        #expect(again.entries.count == 1 && again.entries[0].blob == Self.ed25519Blob(9))
        // Replaced by another file (a new inode), and removed.
        try first.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try KnownHostsFile.read(path: path).entries[0].blob == Self.ed25519Blob(1))
        try FileManager.default.removeItem(atPath: path)
        #expect(try KnownHostsFile.read(path: path).entries.isEmpty)
    }

    @Test func unreadableAndMissingFiles() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        #expect(try KnownHostsFile.read(path: folder.file("missing")).entries.isEmpty)
        #expect(throws: KnownHostsReadError.self) { try KnownHostsFile.read(path: folder.path) }
        do {
            _ = try KnownHostsFile.read(path: folder.path)
        } catch {
            #expect(error.reason.contains("it is a directory"))
        }
        #expect(KnownHostsReadError(path: "/x", errno: EACCES).reason.contains("permission denied"))
    }
}
