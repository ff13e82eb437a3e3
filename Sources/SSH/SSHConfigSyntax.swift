import CLibSSH2
import Foundation

/// The lexical rules of ssh_config and the value syntaxes of the options labctl reads, on bytes,
/// following OpenSSH 9.2's misc.c (strdelim, argv_split, a2port, convtime, percent and dollar
/// expansion, tilde_expand, parse_user_host_port, parse_uri, valid_domain) and readconf.c's
/// keyword table. Each quirk kept here is one `ssh` has, so that a file reads the same to both.
enum SSHConfigSyntax {
    typealias Bytes = [UInt8]

    static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
    static let doubleQuote = UInt8(ascii: "\""), singleQuote = UInt8(ascii: "'")
    static let backslash = UInt8(ascii: "\\"), hash = UInt8(ascii: "#"), equals = UInt8(ascii: "=")
    static let percent = UInt8(ascii: "%"), dollar = UInt8(ascii: "$"), comma = UInt8(ascii: ",")

    /// OpenSSH's WHITESPACE: " \t\r\n".
    static func isDelimiterSpace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab || byte == 0x0D || byte == 0x0A
    }

    /// C's isspace in the C locale.
    static func isCSpace(_ byte: UInt8) -> Bool {
        byte == space || (byte >= 0x09 && byte <= 0x0D)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    static func isAlpha(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }
    static func isAlnum(_ byte: UInt8) -> Bool { isDigit(byte) || isAlpha(byte) }

    static func text(_ bytes: some Collection<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    static func lowercased(_ bytes: some Collection<UInt8>) -> Bytes { HostPattern.asciiLowercased(Array(bytes)) }

    static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ word: String) -> Bool {
        lowercased(bytes) == Array(word.lowercased().utf8)
    }

    static func skipDelimiterSpace(_ line: Bytes, from index: Int) -> Int {
        var index = index
        while index < line.count && isDelimiterSpace(line[index]) { index += 1 }
        return index
    }

    // MARK: - Words

    /// The next word of a line the way strdelim cuts it: at whitespace, a double quote or one
    /// `=`. `cursor` nil is C's NULL (nothing left); a cursor at the end is an empty string.
    /// An opening quote without its closing one gives nil and ends the line, as in C.
    ///
    /// The keyword of every line and (in 9.2) the words of a Match line are cut this way,
    /// which is why `Port=22`, `Port = 22` and `"Port" 22` all read as Port.
    static func nextWord(_ line: Bytes, _ cursor: inout Int?) -> Bytes? {
        guard let start = cursor, start <= line.count else { return nil }
        guard
            let stop = line[start...].firstIndex(where: { isDelimiterSpace($0) || $0 == doubleQuote || $0 == equals })
        else {
            cursor = nil
            return Array(line[start...])
        }
        if line[stop] == doubleQuote {
            guard let close = line[(stop + 1)...].firstIndex(of: doubleQuote) else {
                cursor = nil
                return nil
            }
            cursor = skipDelimiterSpace(line, from: close + 1)
            return Array(line[start..<stop]) + Array(line[(stop + 1)..<close])
        }
        // Only one `=` may separate a keyword from its value: `Port==22` leaves "=22".
        let sawEquals = line[stop] == equals
        var next = skipDelimiterSpace(line, from: stop + 1)
        if !sawEquals && next < line.count && line[next] == equals {
            next = skipDelimiterSpace(line, from: next + 1)
        }
        cursor = next
        return Array(line[start..<stop])
    }

    /// The arguments after a keyword the way argv_split makes them: split at spaces and tabs,
    /// "double" or 'single' quotes group, `\\` `\"` `\'` (and `\ ` outside quotes) are escapes,
    /// and a `#` starting an argument ends the line. Nil when a quote is not closed.
    static func arguments(_ text: ArraySlice<UInt8>) -> [Bytes]? {
        var result: [Bytes] = []
        var index = text.startIndex
        while index < text.endIndex {
            let first = text[index]
            if first == space || first == tab {
                index += 1
                continue
            }
            if first == hash { break }
            var quote: UInt8 = 0
            var argument: Bytes = []
            while index < text.endIndex {
                let byte = text[index]
                if byte == backslash {
                    let next: UInt8 = index + 1 < text.endIndex ? text[index + 1] : 0
                    if next == singleQuote || next == doubleQuote || next == backslash || (quote == 0 && next == space) {
                        index += 1
                        argument.append(next)
                    } else {
                        argument.append(byte)
                    }
                } else if quote == 0 && (byte == space || byte == tab) {
                    break
                } else if quote == 0 && (byte == doubleQuote || byte == singleQuote) {
                    quote = byte
                } else if quote != 0 && byte == quote {
                    quote = 0
                } else {
                    argument.append(byte)
                }
                index += 1
            }
            result.append(argument)
            if index >= text.endIndex {
                if quote != 0 { return nil }
                break
            }
            index += 1
        }
        return result
    }

    // MARK: - Numbers

    /// strtoll's view of a whole string: leading white space, an optional sign, decimal digits
    /// and nothing after. Nil when that is not the shape or the value overflows.
    static func wholeDecimal(_ bytes: Bytes) -> Int64? {
        var index = 0
        while index < bytes.count && isCSpace(bytes[index]) { index += 1 }
        var negative = false
        if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            guard isDigit(bytes[index]) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(bytes[index] - 0x30))
            if overflow1 || overflow2 { return nil }
            value = sum
            index += 1
        }
        return negative ? -value : value
    }

    /// a2port: a number 0...65535, else a TCP service name from the services database; the
    /// caller refuses 0 as OpenSSH does ("Bad port").
    static func port(_ bytes: Bytes) -> Int? {
        if let number = wholeDecimal(bytes) {
            return (0...65535).contains(number) ? Int(number) : nil
        }
        return serviceTCPPort(text(bytes))
    }

    static func serviceTCPPort(_ name: String) -> Int? {
        #if canImport(Glibc)
            var entry = servent()
            var found: UnsafeMutablePointer<servent>?
            var buffer = [CChar](repeating: 0, count: 4096)
            let status = buffer.withUnsafeMutableBufferPointer { storage -> Int32 in
                guard let base = storage.baseAddress else { return -1 }
                return getservbyname_r(name, "tcp", &entry, base, storage.count, &found)
            }
            guard status == 0, found != nil else { return nil }
            return Int(UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.s_port)))
        #else
            // Darwin's getservbyname keeps its answer per thread.
            guard let entry = getservbyname(name, "tcp") else { return nil }
            return Int(UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.pointee.s_port)))
        #endif
    }

    /// convtime: a sequence of number[s|m|h|d|w] summed in seconds, at most Int32.max.
    static func seconds(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty else { return nil }
        let limit = Int(Int32.max)
        var total = 0
        var index = 0
        while index < bytes.count {
            // strtol: white space, a sign, digits; a negative part is refused below.
            var cursor = index
            while cursor < bytes.count && isCSpace(bytes[cursor]) { cursor += 1 }
            var negative = false
            if cursor < bytes.count && (bytes[cursor] == UInt8(ascii: "+") || bytes[cursor] == UInt8(ascii: "-")) {
                negative = bytes[cursor] == UInt8(ascii: "-")
                cursor += 1
            }
            let digitsStart = cursor
            var value = 0
            while cursor < bytes.count && isDigit(bytes[cursor]) {
                value = min(value * 10 + Int(bytes[cursor] - 0x30), limit + 1)
                cursor += 1
            }
            guard cursor > digitsStart, !(negative && value > 0) else { return nil }
            var multiplier = 1
            if cursor < bytes.count {
                switch bytes[cursor] | 0x20 {
                case UInt8(ascii: "s"): multiplier = 1
                case UInt8(ascii: "m"): multiplier = 60
                case UInt8(ascii: "h"): multiplier = 3600
                case UInt8(ascii: "d"): multiplier = 86400
                case UInt8(ascii: "w"): multiplier = 604_800
                default: return nil
                }
                cursor += 1
            }
            guard value <= limit / multiplier else { return nil }
            let part = value * multiplier
            guard total <= limit - part else { return nil }
            total += part
            index = cursor
        }
        return total
    }

    // MARK: - Expansion

    enum ExpansionProblem: Error, Equatable {
        case unknownToken(UInt8)
        case percentAtEnd
        case unclosedVariable
        case emptyVariable
        case undefinedVariable(String)

        var sentence: String {
            switch self {
            case .unknownToken(let byte): return "unknown token %\(SSHConfigSyntax.text([byte]))"
            case .percentAtEnd: return "a % at the end (write %% for a percent sign)"
            case .unclosedVariable: return "a ${ without its closing }"
            case .emptyVariable: return "an empty ${}"
            case .undefinedVariable(let name): return "the environment variable \(name) is not set"
            }
        }
    }

    /// vdollar_percent_expand: `%x` from `tokens` (nil: `%` is not special) and, when
    /// `environment` is given, `${NAME}`; `%%` is a percent sign. An unknown token or an unset
    /// variable is an error, as ssh stops there.
    static func expand(_ text: Bytes, tokens: [UInt8: Bytes]?, environment: [String: String]?) throws(ExpansionProblem)
        -> Bytes
    {
        var out: Bytes = []
        var missing: String?
        var index = 0
        while index < text.count {
            let byte = text[index]
            if let environment, byte == dollar, index + 1 < text.count, text[index + 1] == UInt8(ascii: "{") {
                let nameStart = index + 2
                guard let close = text[nameStart...].firstIndex(of: UInt8(ascii: "}")) else {
                    throw .unclosedVariable
                }
                guard close > nameStart else { throw .emptyVariable }
                let name = SSHConfigSyntax.text(text[nameStart..<close])
                if let value = environment[name] {
                    out += Array(value.utf8)
                } else if missing == nil {
                    missing = name
                }
                index = close + 1
                continue
            }
            guard let tokens, byte == percent else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < text.count else { throw .percentAtEnd }
            let key = text[index + 1]
            if key == percent {
                out.append(percent)
            } else if let value = tokens[key] {
                out += value
            } else {
                throw .unknownToken(key)
            }
            index += 2
        }
        if let missing { throw .undefinedVariable(missing) }
        return out
    }

    /// tilde_expand: `~` and `~/path` from the user's home directory (the passwd entry's in
    /// ssh, `home` here), `~user/path` from that user's; the home always gains a `/`. Nil for
    /// an unknown user (ssh exits).
    static func expandTilde(_ path: Bytes, home: String) -> Bytes? {
        guard path.first == UInt8(ascii: "~") else { return path }
        let slash = UInt8(ascii: "/")
        let rest = path.dropFirst()
        let directory: String
        var remainder: ArraySlice<UInt8>
        if rest.isEmpty || rest.first == slash {
            directory = home
            remainder = rest.drop { $0 == slash }
        } else {
            let userEnd = rest.firstIndex(of: slash) ?? rest.endIndex
            guard let found = passwdHome(of: text(rest[rest.startIndex..<userEnd])) else { return nil }
            directory = found
            remainder = rest[userEnd...].drop { $0 == slash }
        }
        var out = Array(directory.utf8)
        if out.last != slash { out.append(slash) }
        out += remainder
        return out
    }

    static func passwdHome(of user: String) -> String? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return buffer.withUnsafeMutableBufferPointer { storage -> String? in
            guard let base = storage.baseAddress, getpwnam_r(user, &entry, base, storage.count, &found) == 0, found != nil,
                let directory = entry.pw_dir
            else { return nil }
            return String(cString: directory)
        }
    }

    /// glob(3)'s GLOB_TILDE as OpenSSH's bundled glob does it: `~` is $HOME (the passwd home
    /// when unset), `~user` that user's home, an unknown user leaves the pattern alone. No
    /// slash is added: `~/.ssh/x` becomes $HOME/.ssh/x.
    static func globTilde(_ pattern: Bytes, environmentHome: String) -> Bytes {
        guard pattern.first == UInt8(ascii: "~") else { return pattern }
        let nameEnd = pattern.firstIndex(of: UInt8(ascii: "/")) ?? pattern.endIndex
        let name = pattern[1..<nameEnd]
        let directory: String
        if name.isEmpty {
            directory = environmentHome
        } else if let found = passwdHome(of: text(name)) {
            directory = found
        } else {
            return pattern
        }
        return Array(directory.utf8) + pattern[nameEnd...]
    }

    enum GlobResult {
        case paths([String])
        case noMatch
        case failed
    }

    /// The paths a pattern names, in byte order (OpenSSH's glob sorts with strcmp; the C
    /// library's would sort by locale).
    static func glob(_ pattern: String) -> GlobResult {
        var result = glob_t()
        defer { globfree(&result) }
        let status = Foundation.glob(pattern, GLOB_NOSORT, nil, &result)
        if status == GLOB_NOMATCH { return .noMatch }
        guard status == 0 else { return .failed }
        var paths: [String] = []
        if let vector = result.gl_pathv {
            for index in 0..<Int(result.gl_pathc) {
                if let path = vector[index] { paths.append(String(cString: path)) }
            }
        }
        return .paths(paths.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
    }

    // MARK: - ProxyJump

    /// What parse_jump checks of a ProxyJump list (already cut at `#` and trimmed): every hop,
    /// comma-separated, is an ssh:// URI or [user@]host[:port].
    static func isValidJumpList(_ list: Bytes) -> Bool {
        list.split(separator: comma, omittingEmptySubsequences: false).allSatisfy { hop in
            let hop = Array(hop)
            if let valid = sshURIIsValid(hop) { return valid }
            return userHostPortIsValid(hop)
        }
    }

    /// hpdelim2: the host part (brackets kept), the byte that ended it (0 at the end) and what
    /// follows; nil when a `[` is not closed or something other than `:` or `/` follows `]`.
    static func splitHost(_ text: ArraySlice<UInt8>) -> (host: ArraySlice<UInt8>, delimiter: UInt8, rest: ArraySlice<UInt8>)? {
        var stop: Int
        if text.first == UInt8(ascii: "[") {
            guard let close = text.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            stop = close + 1
        } else {
            stop = text.firstIndex { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "/") } ?? text.endIndex
        }
        if stop == text.endIndex { return (text, 0, text[text.endIndex...]) }
        let delimiter = text[stop]
        guard delimiter == UInt8(ascii: ":") || delimiter == UInt8(ascii: "/") else { return nil }
        return (text[text.startIndex..<stop], delimiter, text[(stop + 1)...])
    }

    static func cleanHost(_ host: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if host.first == UInt8(ascii: "["), host.last == UInt8(ascii: "]"), host.count >= 2 {
            return host.dropFirst().dropLast()
        }
        return host
    }

    /// parse_user_host_port's acceptance.
    static func userHostPortIsValid(_ hop: Bytes) -> Bool {
        var rest = hop[...]
        if let at = hop.lastIndex(of: UInt8(ascii: "@")) {
            guard at > 0 else { return false }
            rest = hop[(at + 1)...]
        }
        guard let parts = splitHost(rest), parts.delimiter != UInt8(ascii: "/"), !parts.host.isEmpty else {
            return false
        }
        if !parts.rest.isEmpty {
            guard let port = port(Array(parts.rest)), port > 0 else { return false }
        }
        return true
    }

    /// parse_ssh_uri's verdict: nil when the hop is not an ssh:// URI at all.
    static func sshURIIsValid(_ hop: Bytes) -> Bool? {
        let scheme = Array("ssh://".utf8)
        guard hop.starts(with: scheme) else { return nil }
        var rest = hop.dropFirst(scheme.count)
        if let at = rest.firstIndex(of: UInt8(ascii: "@")) {
            var user = rest[rest.startIndex..<at]
            if let parameters = user.firstIndex(of: UInt8(ascii: ";")) { user = user[user.startIndex..<parameters] }
            guard !user.isEmpty, urlDecodes(user) else { return false }
            rest = rest[(at + 1)...]
        }
        guard let parts = splitHost(rest), !parts.host.isEmpty, isValidDomain(cleanHost(parts.host)) else {
            return false
        }
        var path = parts.rest
        if !path.isEmpty && parts.delimiter == UInt8(ascii: ":") {
            let portEnd = path.firstIndex(of: UInt8(ascii: "/")) ?? path.endIndex
            guard let port = port(Array(path[path.startIndex..<portEnd])), port > 0 else { return false }
            path = portEnd < path.endIndex ? path[(portEnd + 1)...] : path[path.endIndex...]
        }
        // A path is not allowed in a jump host, and one that does not decode is refused first.
        return path.isEmpty
    }

    static func urlDecodes(_ text: ArraySlice<UInt8>) -> Bool {
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == percent {
                guard index + 2 < text.endIndex, isHexDigit(text[index + 1]), isHexDigit(text[index + 2]) else {
                    return false
                }
                index += 3
            } else {
                index += 1
            }
        }
        return true
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66)
    }

    /// valid_domain without lowercasing: letters, digits, `-`, `_` and single dots, starting
    /// with a letter or digit.
    static func isValidDomain(_ name: ArraySlice<UInt8>) -> Bool {
        guard let first = name.first, isAlnum(first) else { return false }
        var last: UInt8 = 0
        for byte in name {
            if last == UInt8(ascii: ".") && byte == UInt8(ascii: ".") { return false }
            guard byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || isAlnum(byte)
            else { return false }
            last = byte
        }
        return true
    }

    // MARK: - Host names

    /// ssh's is_addr_fast: what looks like an address is left for address canonicalisation
    /// instead of being lowercased.
    static func looksLikeAddress(_ name: String) -> Bool {
        name.contains("%") || name.contains(":") || name.utf8.allSatisfy { isDigit($0) || $0 == UInt8(ascii: ".") }
    }

    /// The numeric form getnameinfo gives a name that getaddrinfo reads as exactly one numeric
    /// address ("127.1" is 127.0.0.1), or nil. No name service is asked.
    static func numericAddress(_ name: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, "22", &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(first) }
        guard first.pointee.ai_next == nil else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = host.withUnsafeMutableBufferPointer { buffer in
            getnameinfo(
                first.pointee.ai_addr, first.pointee.ai_addrlen, buffer.baseAddress, socklen_t(buffer.count), nil, 0,
                NI_NUMERICHOST)
        }
        guard status == 0 else { return nil }
        return text(host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })
    }

    // MARK: - Keywords

    /// Every keyword OpenSSH 9.0 to 9.9 knows in ssh_config (readconf.c's keywords table,
    /// including the ones it keeps only to ignore or to call unsupported), plus the GSSAPI key
    /// exchange ones that Debian, Ubuntu and Fedora patch in. Anything else is "Bad
    /// configuration option" unless IgnoreUnknown covers it, as in ssh.
    static let knownKeywords: Set<String> = [
        "addkeystoagent", "addressfamily", "afstokenpassing", "batchmode", "bindaddress", "bindinterface",
        "canonicaldomains", "canonicalizefallbacklocal", "canonicalizehostname", "canonicalizemaxdots",
        "canonicalizepermittedcnames", "casignaturealgorithms", "certificatefile", "challengeresponseauthentication",
        "channeltimeout", "checkhostip", "cipher", "ciphers", "clearallforwardings", "compression",
        "compressionlevel", "connectionattempts", "connecttimeout", "controlmaster", "controlpath",
        "controlpersist", "dsaauthentication", "dynamicforward", "enableescapecommandline", "enablesshkeysign",
        "escapechar", "exitonforwardfailure", "fallbacktorsh", "fingerprinthash", "forkafterauthentication",
        "forwardagent", "forwardx11", "forwardx11timeout", "forwardx11trusted", "gatewayports",
        "globalknownhostsfile", "globalknownhostsfile2", "gssapiauthentication", "gssapidelegatecredentials",
        "hashknownhosts", "host", "hostbasedacceptedalgorithms", "hostbasedauthentication", "hostbasedkeytypes",
        "hostkeyalgorithms", "hostkeyalias", "hostname", "identitiesonly", "identityagent", "identityfile",
        "identityfile2", "ignoreunknown", "include", "ipqos", "kbdinteractiveauthentication",
        "kbdinteractivedevices", "keepalive", "kerberosauthentication", "kerberostgtpassing", "kexalgorithms",
        "knownhostscommand", "localcommand", "localforward", "loglevel", "logverbose", "macs", "match",
        "nohostauthenticationforlocalhost", "numberofpasswordprompts", "obscurekeystroketiming",
        "passwordauthentication", "permitlocalcommand", "permitremoteopen", "pkcs11provider", "port",
        "preferredauthentications", "protocol", "proxycommand", "proxyjump", "proxyusefdpass",
        "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes", "pubkeyauthentication", "rekeylimit",
        "remotecommand", "remoteforward", "requesttty", "requiredrsasize", "revokedhostkeys",
        "rhostsauthentication", "rhostsrsaauthentication", "rsaauthentication", "securitykeyprovider", "sendenv",
        "serveralivecountmax", "serveraliveinterval", "sessiontype", "setenv", "skeyauthentication",
        "smartcarddevice", "stdinnull", "streamlocalbindmask", "streamlocalbindunlink", "stricthostkeychecking",
        "syslogfacility", "tag", "tcpkeepalive", "tisauthentication", "tunnel", "tunneldevice", "updatehostkeys",
        "useprivilegedport", "user", "userknownhostsfile", "userknownhostsfile2", "useroaming", "usersh",
        "verifyhostkeydns", "visualhostkey", "xauthlocation",
        // Debian's GSSAPI key exchange patch.
        "gssapikeyexchange", "gssapiclientidentity", "gssapiserveridentity", "gssapirenewalforcesrekey",
        "gssapitrustdns", "gssapikexalgorithms",
    ]
}
