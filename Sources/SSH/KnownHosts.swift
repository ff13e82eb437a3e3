import CLibSSH2
import Foundation
import Synchronization

/// An OpenSSH known_hosts file, parsed once per connection: before the handshake to choose the
/// host key algorithms, and after it to judge the key the host presented.
///
/// The file is read as bytes and each line parsed on its own, because one bad line (a Latin-1
/// comment, a truncated paste) must cost only that line: when a strict check reads a damaged file
/// as empty, accept-new would record any key, a changed one included. The rules are OpenSSH's
/// (hostfile.c hostkeys_foreach_file, check_markers, sshkey_read; sshconnect.c check_host_key),
/// so that labctl and `ssh` agree on every file.
struct KnownHostsFile: Sendable {
    enum Marker: Sendable, Equatable {
        case none
        case revoked
        /// Kept only to be skipped: labctl has no host certificates.
        case certAuthority
    }

    struct Entry: Sendable {
        var line: Int
        var marker: Marker
        /// The host field as written (a pattern list, or `|1|salt|hash`).
        var hosts: [UInt8]
        /// Set for a hashed field.
        var salt: [UInt8]?
        /// The key type as written on the line ("ssh-ed25519").
        var typeName: String
        var type: HostKeyType
        var blob: [UInt8]

        func matches(_ name: [UInt8]) -> Bool {
            HostPattern.matches(name: name, field: hosts[...], salt: salt)
        }
    }

    enum Verdict: Equatable {
        case known(line: Int)
        case unknown
        /// The host is listed with another key; `line` is the one OpenSSH calls "offending".
        case changed(line: Int, keyType: String, fingerprint: String)
        case revoked(line: Int)
    }

    let path: String
    private(set) var entries: [Entry] = []
    /// "known_hosts <path> line N: <why>; ignored", one per line that could not be read.
    private(set) var warnings: [String] = []

    /// Parses `contents`; lines that cannot be read are skipped and reported in `warnings`.
    init(path: String, contents: [UInt8]) {
        self.path = path
        for (index, rawLine) in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = rawLine
            // OpenSSH reads a line as a C string: a NUL ends it.
            if let nul = line.firstIndex(of: 0) { line = line[..<nul] }
            switch Self.parse(line, number: index + 1) {
            case .entry(let entry): entries.append(entry)
            case .comment: break
            case .invalid(let why): warnings.append("known_hosts \(path) line \(index + 1): \(why); ignored")
            }
        }
    }

    /// Reads the file. A missing file is an empty one (nothing known yet); a file that exists but
    /// cannot be read is an error, never "no entries", or strict mode would call every host unknown
    /// and accept-new would record whatever key it is shown.
    static func read(path: String) throws(KnownHostsReadError) -> KnownHostsFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return KnownHostsFile(path: path, contents: []) }
            throw KnownHostsReadError(path: path, errno: code)
        }
        defer { Glibc.close(fd) }
        return try read(path: path, fd: fd)
    }

    /// Which version of a file a parse came from: a run connecting to hundreds of hosts reads
    /// and parses the file once, yet sees any change (accept-new's appends, an edit) at once.
    private struct FileVersion: Equatable {
        var device: UInt64, inode: UInt64, size: Int64
        var modified: timespec, changed: timespec

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
            changed = info.st_ctim
        }

        static func == (a: FileVersion, b: FileVersion) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    private struct CachedParse: @unchecked Sendable {
        var version: FileVersion
        var file: KnownHostsFile
    }

    private static let cache = Mutex<[String: CachedParse]>([:])

    private static func read(path: String, fd: Int32) throws(KnownHostsReadError) -> KnownHostsFile {
        var info = stat()
        // open(2) succeeds on a directory for reading; only read(2) would fail, later and vaguely.
        let known = fstat(fd, &info) == 0
        if known, info.st_mode & Glibc.S_IFMT == Glibc.S_IFDIR {
            throw KnownHostsReadError(path: path, errno: EISDIR)
        }
        let version = known ? FileVersion(info) : nil
        if let version, let cached = cache.withLock({ $0[path] }), cached.version == version {
            return cached.file
        }
        let file = try readContents(path: path, fd: fd)
        if let version { cache.withLock { $0[path] = CachedParse(version: version, file: file) } }
        return file
    }

    private static func readContents(path: String, fd: Int32) throws(KnownHostsReadError) -> KnownHostsFile {
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw KnownHostsReadError(path: path, errno: errno)
            }
            if count == 0 { break }
            contents += chunk[..<count]
            offset += off_t(count)
        }
        return KnownHostsFile(path: path, contents: contents)
    }

    // MARK: Judging a key

    /// OpenSSH's check_host_key for a plain (not certificate) key, CheckHostIP off.
    func verify(host: String, port: Int, key: [UInt8]) -> Verdict {
        let verdict = status(of: key, for: HostPattern.lookupName(host: host, port: port))
        // A host on another port that is unknown as `[host]:port` may still be listed under its
        // bare name with this very key; OpenSSH accepts that (and only a match: a changed or
        // revoked bare-name entry leaves it unknown).
        if verdict == .unknown, port != 22, port != 0 {
            let bare = status(of: key, for: HostPattern.lookupName(host: host, port: 22))
            if case .known = bare { return bare }
        }
        return verdict
    }

    /// check_key_in_hostkeys: a line with this very key makes it known; any other key listed for
    /// the name, of whatever type, makes it changed; a matching `@revoked` line overrides both.
    /// The line reported for a change is the last one with a key of the presented type, else the
    /// last one of another type (OpenSSH names the last of any type; a line of the same type is
    /// the one the user has to look at).
    func status(of key: [UInt8], for name: [UInt8]) -> Verdict {
        var verdict = Verdict.unknown
        var sameType: Entry?
        var otherType: Entry?
        let presentedType = HostKeyType.of(blob: key)
        for entry in entries where entry.marker == .none && entry.matches(name) {
            if entry.blob == key {
                verdict = .known(line: entry.line)
                break
            }
            if entry.type == presentedType { sameType = entry } else { otherType = entry }
        }
        if verdict == .unknown, let offending = sameType ?? otherType {
            verdict = .changed(line: offending.line, keyType: offending.typeName, fingerprint: SHA256Digest.opensshFingerprint(offending.blob))
        }
        if let revoked = entries.first(where: { $0.marker == .revoked && $0.blob == key && $0.matches(name) }) {
            return .revoked(line: revoked.line)
        }
        return verdict
    }

    /// Names OpenSSH refuses to write to known_hosts (check_host_key): accept-new cannot record them.
    static func canRecord(host: String) -> Bool {
        !host.utf8.contains { "@?*#[]|'\"\\".utf8.contains($0) }
    }

    // MARK: Choosing the host key algorithm

    /// OpenSSH's default HostKeyAlgorithms order, restricted to the plain key algorithms libssh2
    /// 1.10 can verify (it has ssh-rsa but no rsa-sha2-*, which stand in RSA's place).
    static let defaultHostKeyAlgorithms = [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
    ]

    /// sshconnect2.c order_hostkeyalgs: when the file lists a key of the first algorithm's type,
    /// the default order as it is; otherwise the algorithms whose key type the file lists for
    /// this host first, the rest after, each group in the default order. Without this libssh2
    /// asks for ecdsa first, and a host OpenSSH recorded by its ed25519 key would look changed.
    func hostKeyAlgorithms(host: String, port: Int) -> [String] {
        let name = HostPattern.lookupName(host: host, port: port)
        let listed = Set(entries.filter { $0.marker == .none && !$0.type.certificate && $0.matches(name) }.map(\.type.kind))
        let all = Self.defaultHostKeyAlgorithms
        let kindOf = { (algorithm: String) in HostKeyType.named[algorithm]?.kind }
        if let best = kindOf(all[0]), listed.contains(best) { return all }
        let first = all.filter { kindOf($0).map(listed.contains) == true }
        return first + all.filter { !first.contains($0) }
    }

    // MARK: Recording a key (accept-new)

    /// Appends one plain line for the host (OpenSSH's accept-new), creating the file and its
    /// folder when missing, unless the file, read again under the lock, now judges the key:
    /// another session may have recorded this host since it was first read. Sessions to several
    /// new hosts append at once, from this process or another labctl: O_APPEND and an exclusive
    /// flock keep every line whole and none lost. Returns the verdict the append went by.
    func appendIfUnknown(host: String, port: Int, key: [UInt8], keyType: Int32) throws -> Verdict {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { Glibc.close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let current = try Self.read(path: path, fd: fd)
        let verdict = current.verify(host: host, port: port, key: key)
        guard verdict == .unknown else { return verdict }
        let name = String(decoding: HostPattern.lookupName(host: host, port: port), as: UTF8.self)
        var line = "\(name) \(hostKeyTypeName(keyType)) \(Data(key).base64EncodedString())\n"
        // A file whose last line has no newline must not get ours glued to it.
        var last: UInt8 = 0
        let size = lseek(fd, 0, SEEK_END)
        if size > 0 { _ = pread(fd, &last, 1, size - 1) }
        if size > 0, last != UInt8(ascii: "\n") { line = "\n" + line }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return .unknown
    }

    // MARK: Parsing one line

    enum Parsed {
        case entry(Entry)
        case comment
        case invalid(String)
    }

    static func parse(_ line: ArraySlice<UInt8>, number: Int) -> Parsed {
        var rest = line.drop(while: isBlank)
        if rest.isEmpty || rest.first == UInt8(ascii: "#") { return .comment }

        var marker = Marker.none
        var seenMarker = false
        while rest.first == UInt8(ascii: "@") {
            if seenMarker { return .invalid("more than one marker") }
            seenMarker = true
            // check_markers ends a marker at the first space of the line, a tab only if there is
            // no space at all.
            guard let end = rest.firstIndex(of: UInt8(ascii: " ")) ?? rest.firstIndex(of: UInt8(ascii: "\t")) else {
                return .invalid("a marker and nothing else")
            }
            let word = rest[..<end]
            switch String(decoding: word, as: UTF8.self) {
            case "@revoked": marker = .revoked
            case "@cert-authority": marker = .certAuthority
            default: return .invalid("unknown marker \"\(printable(word))\"")
            }
            rest = rest[end...].drop(while: isBlank)
        }

        guard let hostsEnd = rest.firstIndex(where: isBlank) else {
            return .invalid("too few fields (a host field and no key)")
        }
        let hosts = rest[..<hostsEnd]
        var salt: [UInt8]?
        if hosts.first == UInt8(ascii: "|") {
            guard let decoded = HostPattern.salt(ofHashedField: hosts) else {
                return .invalid("the hashed host field is not |1|salt|hash with a 20-byte base64 salt")
            }
            salt = decoded
        }
        rest = rest[hostsEnd...].drop(while: isBlank)
        if rest.isEmpty || rest.first == UInt8(ascii: "#") { return .invalid("too few fields (no key type)") }

        guard let typeEnd = rest.firstIndex(where: isBlank) else {
            return .invalid("too few fields (no key after the key type)")
        }
        let typeField = rest[..<typeEnd]
        let typeName = String(decoding: typeField, as: UTF8.self)
        guard let type = HostKeyType.named[typeName] else {
            return .invalid("unknown key type \"\(printable(typeField))\"")
        }
        rest = rest[typeEnd...].drop(while: isBlank)
        if rest.isEmpty { return .invalid("too few fields (no key after the key type)") }
        let keyField = rest.prefix(while: { !isBlank($0) })
        guard let blob = Base64.decode(keyField) else { return .invalid("the key is not valid base64") }
        switch HostKeyType.check(blob: blob, against: type) {
        case .success:
            break
        case .failure(let problem):
            return .invalid(problem.description(typeName: typeName))
        }
        return .entry(Entry(
            line: number, marker: marker, hosts: Array(hosts), salt: salt, typeName: typeName, type: type, blob: blob))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// A field quoted in a warning: bytes that are not printable ASCII as \xNN, and short.
    private static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        var text = ""
        for byte in bytes.prefix(40) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                text.append(Character(Unicode.Scalar(byte)))
            } else {
                text += String(format: "\\x%02x", byte)
            }
        }
        return bytes.count > 40 ? text + "..." : text
    }
}

/// A known_hosts file that exists but cannot be read.
struct KnownHostsReadError: Error {
    var path: String
    var errno: Int32

    var reason: String {
        switch errno {
        case EISDIR:
            return "cannot read known_hosts: it is a directory (set ssh.known_hosts to a file)"
        case EACCES, EPERM:
            return "cannot read known_hosts: permission denied (run as the user who owns it, or set ssh.known_hosts)"
        default:
            return "cannot read known_hosts: \(String(cString: strerror(errno)))"
        }
    }
}

/// A key type as OpenSSH tells them apart: the kind of public key, and whether it is a
/// certificate. Signature names that stand for a key type (rsa-sha2-256) map to it, as in
/// OpenSSH's key type table.
struct HostKeyType: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case ed25519, ecdsaP256, ecdsaP384, ecdsaP521, rsa, dsa, ed25519SK, ecdsaP256SK
    }

    var kind: Kind
    var certificate: Bool

    static let named: [String: HostKeyType] = {
        let cert = "-cert-v01@openssh.com"
        let plain: [(String, Kind)] = [
            ("ssh-ed25519", .ed25519), ("ecdsa-sha2-nistp256", .ecdsaP256), ("ecdsa-sha2-nistp384", .ecdsaP384),
            ("ecdsa-sha2-nistp521", .ecdsaP521), ("ssh-rsa", .rsa), ("ssh-dss", .dsa),
            ("sk-ssh-ed25519@openssh.com", .ed25519SK), ("sk-ecdsa-sha2-nistp256@openssh.com", .ecdsaP256SK),
        ]
        var table: [String: HostKeyType] = [:]
        for (name, kind) in plain {
            table[name] = HostKeyType(kind: kind, certificate: false)
            let base = name.hasSuffix("@openssh.com") ? String(name.dropLast("@openssh.com".count)) : name
            table[base + cert] = HostKeyType(kind: kind, certificate: true)
        }
        table["rsa-sha2-256"] = HostKeyType(kind: .rsa, certificate: false)
        table["rsa-sha2-512"] = HostKeyType(kind: .rsa, certificate: false)
        table["rsa-sha2-256" + cert] = HostKeyType(kind: .rsa, certificate: true)
        table["rsa-sha2-512" + cert] = HostKeyType(kind: .rsa, certificate: true)
        table["webauthn-sk-ecdsa-sha2-nistp256@openssh.com"] = HostKeyType(kind: .ecdsaP256SK, certificate: false)
        return table
    }()

    enum BlobProblem: Error {
        case notAKey
        case typeDiffers(String)
        case malformed

        func description(typeName: String) -> String {
            switch self {
            case .notAKey: return "the key field does not hold an SSH public key"
            case .typeDiffers(let inBlob): return "the key type field says \(typeName) but the key is \(inBlob)"
            case .malformed: return "the \(typeName) key is malformed"
            }
        }
    }

    /// The type a key blob names for itself, if it is one known here.
    static func of(blob: [UInt8]) -> HostKeyType? {
        var reader = SSHBlobReader(blob)
        return reader.string().flatMap { named[String(decoding: $0, as: UTF8.self)] }
    }

    /// The blob must be a key of the type the line names (sshkey_read: KEY_TYPE_MISMATCH,
    /// EC_CURVE_MISMATCH), framed as that type's fields with nothing after them. Certificates are
    /// checked only for their type: they are never compared with a host key here.
    static func check(blob: [UInt8], against type: HostKeyType) -> Result<Void, BlobProblem> {
        var reader = SSHBlobReader(blob)
        guard let nameBytes = reader.string(), !nameBytes.isEmpty,
            nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return .failure(.notAKey) }
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard let embedded = named[name] else { return .failure(.notAKey) }
        guard embedded == type else { return .failure(.typeDiffers(name)) }
        if type.certificate { return .success(()) }
        let fields: Bool
        switch type.kind {
        case .ed25519:
            fields = reader.string()?.count == 32
        case .ed25519SK:
            fields = reader.string()?.count == 32 && reader.string() != nil
        case .ecdsaP256, .ecdsaP384, .ecdsaP521, .ecdsaP256SK:
            let (curve, pointLength): (String, Int) = switch type.kind {
            case .ecdsaP384: ("nistp384", 97)
            case .ecdsaP521: ("nistp521", 133)
            default: ("nistp256", 65)
            }
            let curveOK = reader.string().map { String(decoding: $0, as: UTF8.self) == curve } == true
            let point = reader.string()
            fields = curveOK && point?.count == pointLength && point?.first == 0x04
                && (type.kind != .ecdsaP256SK || reader.string() != nil)
        case .rsa:
            fields = reader.string() != nil && (reader.string()?.isEmpty == false)
        case .dsa:
            fields = (0..<4).allSatisfy { _ in reader.string() != nil }
        }
        return fields && reader.isAtEnd ? .success(()) : .failure(.malformed)
    }
}

/// Reads the length-prefixed strings an SSH key blob is made of.
struct SSHBlobReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func string() -> ArraySlice<UInt8>? {
        guard bytes.count - offset >= 4 else { return nil }
        let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
        guard bytes.count - offset - 4 >= length else { return nil }
        defer { offset += 4 + length }
        return bytes[offset + 4..<offset + 4 + length]
    }
}
