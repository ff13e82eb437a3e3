import CLibSSH2
import Foundation

/// The host field of a known_hosts line, matched the way OpenSSH matches it.
///
/// Written by hand because nothing available does it: libssh2's knownhost matcher knows neither
/// `*`/`?` wildcards nor `!` negation, and stops reading a file at its first malformed line.
/// The rules follow OpenSSH's match.c (match_pattern, match_pattern_list, match_hostname) and
/// hostfile.c (match_maybe_hashed, extract_salt, host_hash), on bytes, since a known_hosts file
/// need not be UTF-8.
enum HostPattern {
    /// `|1|salt|hmac`: only the HMAC-SHA1 of the name with the salt is stored.
    static let hashMagic: [UInt8] = Array("|1|".utf8)

    /// The name OpenSSH looks up for a host: lowercased, and `[host]:port` unless the port is 22
    /// (put_host_port).
    static func lookupName(host: String, port: Int) -> [UInt8] {
        let lowered = asciiLowercased(Array(host.utf8))
        if port == 22 || port == 0 { return lowered }
        return Array("[".utf8) + lowered + Array("]:\(port)".utf8)
    }

    /// Whether the host field `field` names `name` (already lowercased): a hashed field must
    /// equal the hash of the name; a plain field is a pattern list where a negated match wins.
    static func matches(name: [UInt8], field: ArraySlice<UInt8>, salt: [UInt8]?) -> Bool {
        if let salt {
            return field.elementsEqual(hashedField(name: name, salt: salt))
        }
        return matchList(name: asciiLowercased(name), patterns: field) == 1
    }

    /// The salt of a hashed field, or nil when the field is hashed but its salt is unusable
    /// (OpenSSH then counts the line as a parse error). Only called for fields starting with `|`.
    static func salt(ofHashedField field: ArraySlice<UInt8>) -> [UInt8]? {
        guard field.starts(with: hashMagic) else { return nil }
        let rest = field.dropFirst(hashMagic.count)
        guard let bar = rest.firstIndex(of: UInt8(ascii: "|")) else { return nil }
        let encoded = rest[..<bar]
        guard !encoded.isEmpty, encoded.count <= 1024, let salt = Base64.decode(encoded), salt.count == 20 else {
            return nil
        }
        return salt
    }

    /// `|1|` + base64(salt) + `|` + base64(HMAC-SHA1(salt, name)), as ssh-keygen -H writes it.
    static func hashedField(name: [UInt8], salt: [UInt8]) -> [UInt8] {
        _ = LibSSH2.cryptoInitialised
        var digest = [UInt8](repeating: 0, count: 20)
        let ok = salt.withUnsafeBufferPointer { key in
            name.withUnsafeBufferPointer { data in
                labctl_hmac_sha1(key.baseAddress, Int32(key.count), data.baseAddress, data.count, &digest)
            }
        }
        // An HMAC that libcrypto refuses to compute can match nothing.
        guard ok == 1 else { return [] }
        return hashMagic + Array(Data(salt).base64EncodedString().utf8) + [UInt8(ascii: "|")]
            + Array(Data(digest).base64EncodedString().utf8)
    }

    /// 1 when a pattern of the comma-separated list matches, -1 when a `!pattern` matches
    /// (which excludes the name whatever else matches), 0 when none does. Patterns are
    /// lowercased unless `lowercasePatterns` is false (ssh_config's `Match user` compares
    /// case-sensitively); a lowercased pattern needs an already lowercased name.
    static func matchList(name: [UInt8], patterns: ArraySlice<UInt8>, lowercasePatterns: Bool = true) -> Int {
        var positive = false
        var index = patterns.startIndex
        while index < patterns.endIndex {
            var negated = false
            if patterns[index] == UInt8(ascii: "!") {
                negated = true
                index += 1
            }
            let end = patterns[index...].firstIndex(of: UInt8(ascii: ",")) ?? patterns.endIndex
            let sub = lowercasePatterns ? asciiLowercased(Array(patterns[index..<end])) : Array(patterns[index..<end])
            // OpenSSH copies each subpattern into a 1024-byte buffer and gives up on the whole
            // list when one does not fit.
            if sub.count >= 1023 { return 0 }
            index = end < patterns.endIndex ? end + 1 : end
            if matchPattern(name[...], sub[...]) {
                if negated { return -1 }
                positive = true
            }
        }
        return positive ? 1 : 0
    }

    /// `*` matches any run of bytes (also none), `?` exactly one, anything else itself.
    static func matchPattern(_ string: ArraySlice<UInt8>, _ pattern: ArraySlice<UInt8>) -> Bool {
        var s = string
        var p = pattern
        while true {
            guard let head = p.first else { return s.isEmpty }
            if head == UInt8(ascii: "*") {
                while p.first == UInt8(ascii: "*") { p = p.dropFirst() }
                if p.isEmpty { return true }
                var rest = s
                while true {
                    if matchPattern(rest, p) { return true }
                    if rest.isEmpty { return false }
                    rest = rest.dropFirst()
                }
            }
            guard let next = s.first else { return false }
            if head != UInt8(ascii: "?") && head != next { return false }
            s = s.dropFirst()
            p = p.dropFirst()
        }
    }

    static func asciiLowercased(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
    }
}

/// Base64 as OpenSSH decodes it (b64_pton): whitespace inside is skipped, padding is required
/// where the length calls for it, nothing but whitespace may follow it, and the unused bits of
/// the last byte must be zero.
///
/// Foundation's decoder differs on these edges (it has no notion of skipped whitespace), and a
/// line OpenSSH reads must read the same here.
enum Base64 {
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = Int8(index)
        }
        return table
    }()

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)
    }

    static func decode<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var state = 0
        var iterator = text.makeIterator()
        var sawPad = false
        while let byte = iterator.next() {
            if isSpace(byte) { continue }
            if byte == UInt8(ascii: "=") {
                sawPad = true
                break
            }
            let value = values[Int(byte)]
            guard value >= 0 else { return nil }
            accumulator = (accumulator << 6) | UInt32(value)
            state += 1
            if state == 4 {
                out.append(UInt8((accumulator >> 16) & 0xFF))
                out.append(UInt8((accumulator >> 8) & 0xFF))
                out.append(UInt8(accumulator & 0xFF))
                accumulator = 0
                state = 0
            }
        }
        guard sawPad else { return state == 0 ? out : nil }
        switch state {
        case 2:
            // Two characters carry one byte and need "==".
            var next: UInt8?
            repeat { next = iterator.next() } while next.map(isSpace) == true
            guard next == UInt8(ascii: "=") else { return nil }
            guard accumulator & 0x0F == 0 else { return nil }
            out.append(UInt8((accumulator >> 4) & 0xFF))
        case 3:
            guard accumulator & 0x03 == 0 else { return nil }
            out.append(UInt8((accumulator >> 10) & 0xFF))
            out.append(UInt8((accumulator >> 2) & 0xFF))
        default:
            return nil
        }
        while let byte = iterator.next() {
            guard isSpace(byte) else { return nil }
        }
        return out
    }
}
