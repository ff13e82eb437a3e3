import CLibSSH2
import Foundation

/// Host key verification against an OpenSSH known_hosts file.
///
/// The file is read line by line rather than with libssh2_knownhost_readfile, which stops at the
/// first malformed line and ignores `@revoked` markers. Each line is still matched by libssh2
/// itself, so hashed entries and `[host]:port` forms follow OpenSSH's rules.
struct KnownHostsFile {
    enum Verdict: Equatable {
        case match
        case unknown
        case mismatch(line: Int, expectedFingerprint: String)
        case revoked(line: Int)
    }

    let path: String

    func verify(session: OpaquePointer, host: String, port: Int, key: [UInt8], keyType: Int32) -> Verdict {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return .unknown }
        var firstMismatch: Verdict?
        var matched = false
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var revoked = false
            if line.hasPrefix("@") {
                guard line.hasPrefix("@revoked") else { continue }  // @cert-authority: no certificates here
                revoked = true
                line = String(line.dropFirst("@revoked".count)).trimmingCharacters(in: .whitespaces)
            }
            switch check(line: line, session: session, host: host, port: port, key: key, keyType: keyType) {
            case .match?:
                if revoked { return .revoked(line: index + 1) }
                matched = true
            case .mismatch(_, let expected)? where !revoked:
                if firstMismatch == nil { firstMismatch = .mismatch(line: index + 1, expectedFingerprint: expected) }
            default:
                continue
            }
        }
        if matched { return .match }
        return firstMismatch ?? .unknown
    }

    /// Matches one known_hosts line; nil when the line is malformed or names another host.
    private func check(line: String, session: OpaquePointer, host: String, port: Int, key: [UInt8], keyType: Int32)
        -> Verdict?
    {
        guard let collection = libssh2_knownhost_init(session) else { return nil }
        defer { libssh2_knownhost_free(collection) }
        // NUL-terminated on purpose: libssh2 1.10 measures parts of the line with strlen even
        // though it is given the length, and reads past an unterminated buffer.
        let read = line.withCString { pointer in
            libssh2_knownhost_readline(collection, pointer, strlen(pointer), LIBSSH2_KNOWNHOST_FILE_OPENSSH)
        }
        guard read == 0 else { return nil }
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let typeMask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownHostKeyMask(keyType)
        let result = key.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                libssh2_knownhost_checkp(collection, host, Int32(port), $0.baseAddress, $0.count, typeMask, &entry)
            }
        }
        switch result {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return .match
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            // The line's own key field (hosts, type, key): libssh2 does not hand back the entry on a mismatch.
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            var expected = "another key"
            if fields.count >= 3, let blob = Data(base64Encoded: String(fields[2])) {
                expected = opensshFingerprint(Array(blob))
            }
            return .mismatch(line: 0, expectedFingerprint: expected)
        default:
            return nil
        }
    }

    /// Appends one plain line for the host (OpenSSH's accept-new), creating the file and its
    /// folder when missing. Sessions to several new hosts append at once, from this process or
    /// another labctl: O_APPEND and an exclusive flock keep every line whole and none lost.
    func append(host: String, port: Int, key: [UInt8], keyType: Int32) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { Glibc.close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let name = port == 22 ? host : "[\(host)]:\(port)"
        var line = "\(name) \(hostKeyTypeName(keyType)) \(Data(key).base64EncodedString())\n"
        // A file whose last line has no newline must not get ours glued to it.
        var last: UInt8 = 0
        let size = lseek(fd, 0, SEEK_END)
        if size > 0, let reader = FileHandle(forReadingAtPath: path) {
            try? reader.seek(toOffset: UInt64(size - 1))
            last = (try? reader.read(upToCount: 1))?.first ?? 0
            try? reader.close()
        }
        if size > 0, last != UInt8(ascii: "\n") { line = "\n" + line }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}
