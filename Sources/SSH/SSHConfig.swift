import CLibSSH2
import Foundation

/// What OpenSSH's client would take from an ssh_config file for one host, for the options labctl
/// uses. Nil (or empty) means the file does not set the option, so OpenSSH's default applies.
public struct SSHConfigResolution: Sendable, Equatable {
    /// HostName with %h (the host as typed) and %% expanded, then lowercased unless it is an
    /// address, and an address in getnameinfo's numeric form ("127.1" is "127.0.0.1"), as ssh
    /// connects to it. Nil: ssh connects to the host as typed, lowercased.
    public var hostName: String?
    public var user: String?
    public var port: Int?
    /// Every IdentityFile that applied, in order and without repeats (OpenSSH accumulates them),
    /// with ~, %-tokens and ${VAR} expanded. "none" stays "none" (no key files, and no defaults).
    /// Empty: ssh would try its default files.
    public var identityFiles: [String]
    public var identitiesOnly: Bool?
    /// "none", "SSH_AUTH_SOCK", "$VAR" (read from the environment when connecting) or a path with
    /// ~, %-tokens and ${VAR} expanded.
    public var identityAgent: String?
    /// The jump list as written, without a trailing comment ("user@jump:2222,other"); "none" when
    /// the first ProxyJump that applied says none.
    public var proxyJump: String?
    /// The ProxyCommand ssh would run (the rest of its line, as written), or "none"; nil when none
    /// applied or a ProxyJump came first (which makes ssh ignore ProxyCommand).
    public var proxyCommand: String?
    /// The files of the first UserKnownHostsFile that applied, expanded like identityFiles; ["none"]
    /// for none. Empty: ~/.ssh/known_hosts and ~/.ssh/known_hosts2.
    public var userKnownHostsFiles: [String]
    /// "yes", "no", "ask" or "accept-new": OpenSSH reads true as yes and false and off as no.
    public var strictHostKeyChecking: String?
    /// Seconds; nil also for "none", which OpenSSH treats as not set.
    public var connectTimeout: Int?
    /// Keywords (lowercased, once each, in order) in blocks that applied to the host that labctl
    /// does not use: known OpenSSH options, deprecated ones and IgnoreUnknown'd ones. ProxyCommand
    /// is listed whenever a line of it applied, even one ssh ignores (see proxyCommand).
    public var unsupported: [String]

    public init(
        hostName: String? = nil, user: String? = nil, port: Int? = nil, identityFiles: [String] = [],
        identitiesOnly: Bool? = nil, identityAgent: String? = nil, proxyJump: String? = nil,
        proxyCommand: String? = nil, userKnownHostsFiles: [String] = [], strictHostKeyChecking: String? = nil,
        connectTimeout: Int? = nil, unsupported: [String] = []
    ) {
        self.hostName = hostName
        self.user = user
        self.port = port
        self.identityFiles = identityFiles
        self.identitiesOnly = identitiesOnly
        self.identityAgent = identityAgent
        self.proxyJump = proxyJump
        self.proxyCommand = proxyCommand
        self.userKnownHostsFiles = userKnownHostsFiles
        self.strictHostKeyChecking = strictHostKeyChecking
        self.connectTimeout = connectTimeout
        self.unsupported = unsupported
    }
}

/// A config file ssh would refuse, with the place that makes it refuse: the first one found
/// (ssh names every bad line of a file before giving up; one is enough to fix at a time).
public struct SSHConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 0 when the problem is the file itself (unreadable, bad permissions).
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(file) line \(line): \(message)" : "\(file): \(message)" }
}

/// OpenSSH's client configuration (ssh_config) read as OpenSSH 9.2 reads it (readconf.c,
/// ssh.c), for the options in `SSHConfigResolution`; the tests hold it beside `ssh -G`.
///
/// Later 9.x releases are allowed for where refusing would be worse than reading: their new
/// keywords (Tag, ChannelTimeout, ObscureKeystrokeTiming) are known, and `Match tagged` works.
/// Deliberately not done: Match exec and Match localnetwork are never evaluated (labctl runs
/// no commands from a config file); when one would decide whether a block applies, resolving
/// fails instead of guessing either way. Hostname canonicalisation does no DNS: with
/// CanonicalizeHostname set the second pass runs as in ssh, with the name as if no suffix had
/// resolved. The values of options labctl does not use are not checked. The file itself is
/// refused when unreadable or writable by others (ssh ignores an unreadable ~/.ssh/config, and
/// does not check the permissions of a file given with -F).
public enum SSHConfig {
    /// Resolves `host` (the name the user typed) from the config file at `path`. `home` is the
    /// user's home directory (ssh takes it from the passwd entry: ~ and %d in values),
    /// `localUser` the local user name (%u, and the remote user when none is set). `environment`
    /// gives ${VAR} expansions and HOME, which ssh's glob uses for ~ in Include (falling back to
    /// `home`). A missing file resolves to nothing set, as ssh does for ~/.ssh/config.
    public static func resolve(
        host: String, path: String, home: String, localUser: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SSHConfigError) -> SSHConfigResolution {
        let context = SSHConfigReader.Context(
            hostArgument: host, home: home, localUser: localUser, environment: environment,
            localHostName: SSHConfigReader.localHostName(), uid: UInt32(getuid()))
        return try SSHConfigReader.resolve(path: path, context: context)
    }
}

/// One resolution: OpenSSH's Options for the fields labctl reads, filled line by line where each
/// value is taken only the first time it is obtained.
struct SSHConfigReader {
    typealias Bytes = [UInt8]
    typealias Syntax = SSHConfigSyntax

    struct Context: Sendable {
        var hostArgument: String
        var home: String
        var localUser: String
        var environment: [String: String]
        var localHostName: String
        var uid: UInt32

        /// glob's ~ (Include) follows $HOME, unlike tilde_expand.
        var includeHome: String {
            if let home = environment["HOME"], !home.isEmpty { return home }
            return home
        }
    }

    struct Location: Sendable, Equatable {
        var file: String
        var line: Int
    }

    struct Located {
        var value: Bytes
        var location: Location
    }

    /// The Options fields involved, unset until a line that applies sets them.
    struct Options {
        var hostName: Located?
        /// ssh puts the resolved name into HostName before the final pass.
        var finalPassHost: Bytes?
        var user: Bytes?
        var port: Int?
        var identityFiles: [Located] = []
        var identitiesOnly: Bool?
        var identityAgent: Located?
        /// jump_host: set (also to "none") by the first ProxyJump that applies.
        var jumpHost: Bytes?
        /// proxy_command is set by a ProxyCommand, or to "none" by a ProxyJump; either blocks the other.
        var proxyCommandSet = false
        var proxyCommand: Bytes?
        var userKnownHostsFiles: [Bytes] = []
        var userKnownHostsLocation: Location?
        var strictHostKeyChecking: String?
        var connectTimeout: Int?
        var hostKeyAlias: Bytes?
        var tag: Bytes?
        var canonicalizeHostname: Int?
        var ignoreUnknown: Bytes?
        var unsupported: [String] = []
    }

    /// Keywords whose values end up in the resolution, or that only steer reading.
    static let handledKeywords: Set<String> = [
        "host", "match", "include", "hostname", "user", "port", "identityfile", "identityfile2", "identitiesonly",
        "identityagent", "proxyjump", "userknownhostsfile", "stricthostkeychecking", "connecttimeout",
        "ignoreunknown",
    ]

    static let maximumIncludeDepth = 16
    static let maximumIdentityFiles = 100
    static let maximumKnownHostsFiles = 32

    let context: Context
    var options = Options()
    /// What Host patterns are matched against: the host as typed, and in the final pass the
    /// resolved name (ssh matches its `host` variable, which HostName has replaced by then).
    var patternHost: Bytes
    var finalPass = false
    var wantFinalPass = false

    init(context: Context) {
        self.context = context
        patternHost = Array(context.hostArgument.utf8)
    }

    static func resolve(path: String, context: Context) throws(SSHConfigError) -> SSHConfigResolution {
        var reader = SSHConfigReader(context: context)
        var active = true
        guard try reader.readFile(path, depth: 0, neverMatch: false, active: &active, includedAt: nil) else {
            return SSHConfigResolution()
        }
        let remoteHost = try reader.remoteHost()
        // `Match final` or canonicalisation make ssh read the files again with the resolved name;
        // values already set stay, so only blocks that newly apply add anything.
        if reader.wantFinalPass || (reader.options.canonicalizeHostname ?? 0) != 0 {
            reader.finalPass = true
            reader.patternHost = Array(remoteHost.utf8)
            reader.options.finalPassHost = Array(remoteHost.utf8)
            var finalActive = true
            _ = try reader.readFile(path, depth: 0, neverMatch: false, active: &finalActive, includedAt: nil)
        }
        return try reader.resolution(remoteHost: remoteHost)
    }

    // MARK: - Files

    enum Loaded {
        case missing
        case unreadable(String)
        case badPermissions
        case contents(Bytes)
    }

    static func load(_ path: String) -> Loaded {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            return code == ENOENT ? .missing : .unreadable(String(cString: strerror(code)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .unreadable(String(cString: strerror(errno))) }
        // ssh refuses a file someone else could have written (and checks every included file).
        if (status.st_uid != 0 && status.st_uid != getuid()) || (status.st_mode & 0o022) != 0 {
            return .badPermissions
        }
        var contents: Bytes = []
        var chunk = Bytes(repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                contents += chunk[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                // A read error (a directory) ends the file, as getline's failure ends ssh's loop.
                break
            }
        }
        return .contents(contents)
    }

    /// Reads one file; false when it does not exist.
    mutating func readFile(_ path: String, depth: Int, neverMatch: Bool, active: inout Bool, includedAt: Location?)
        throws(SSHConfigError) -> Bool
    {
        let origin = includedAt ?? Location(file: path, line: 0)
        guard depth <= Self.maximumIncludeDepth else {
            throw Self.error(origin, "Too many recursive configuration includes (more than \(Self.maximumIncludeDepth) deep)")
        }
        let contents: Bytes
        switch Self.load(path) {
        case .missing:
            return false
        case .unreadable(let reason):
            throw Self.error(origin, "Can't open user config file \(path): \(reason)")
        case .badPermissions:
            throw Self.error(origin, "Bad owner or permissions on \(path)")
        case .contents(let bytes):
            contents = bytes
        }
        var lines = contents.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (index, line) in lines.enumerated() {
            // ssh's lines are C strings: a NUL ends one.
            let text = Array(line.prefix { $0 != 0 })
            try processLine(text, at: Location(file: path, line: index + 1), active: &active, depth: depth, neverMatch: neverMatch)
        }
        return true
    }

    static func error(_ location: Location, _ message: String) -> SSHConfigError {
        SSHConfigError(file: location.file, line: location.line, message: message)
    }

    // MARK: - Lines

    /// The arguments of a line, taken in order; what is left over is "extra arguments".
    struct Arguments {
        var list: [Bytes]
        var index = 0
        var remaining: Int { list.count - index }

        mutating func next() -> Bytes? {
            guard index < list.count else { return nil }
            index += 1
            return list[index - 1]
        }

        mutating func consumeAll() { index = list.count }
    }

    mutating func processLine(_ raw: Bytes, at location: Location, active: inout Bool, depth: Int, neverMatch: Bool)
        throws(SSHConfigError)
    {
        guard !raw.isEmpty else { return }
        // Trailing white space and form feeds go, but never the first byte (as in ssh).
        var end = raw.count
        while end > 1 && (Syntax.isDelimiterSpace(raw[end - 1]) || raw[end - 1] == 0x0C) { end -= 1 }
        let line = Array(raw[0..<end])

        var cursor: Int? = 0
        guard var keyword = Syntax.nextWord(line, &cursor) else { return }
        if keyword.isEmpty {
            guard let next = Syntax.nextWord(line, &cursor) else { return }
            keyword = next
        }
        guard let first = keyword.first, first != 0x0A, first != Syntax.hash else { return }
        keyword = Syntax.lowercased(keyword)
        let name = Syntax.text(keyword)

        guard let afterKeyword = cursor.map({ Syntax.skipDelimiterSpace(line, from: $0) }), afterKeyword < line.count
        else {
            throw Self.error(location, "no argument after keyword \"\(name)\"")
        }
        let rest = line[afterKeyword...]
        if !Syntax.knownKeywords.contains(name) {
            guard let patterns = options.ignoreUnknown, HostPattern.matchList(name: keyword, patterns: patterns[...]) == 1
            else {
                throw Self.error(location, "Bad configuration option: \(name)")
            }
        }
        guard let list = Syntax.arguments(rest) else { throw Self.error(location, "invalid quotes") }
        var arguments = Arguments(list: list)

        if !Self.handledKeywords.contains(name) && active && !options.unsupported.contains(name) {
            options.unsupported.append(name)
        }

        switch name {
        case "host":
            active = false
            while let pattern = arguments.next() {
                guard !pattern.isEmpty else { throw Self.error(location, "keyword \(name) empty argument") }
                if neverMatch {
                    arguments.consumeAll()
                    break
                }
                // Host patterns are matched one by one and case-sensitively (match_pattern), and
                // a matching negated one ends the line.
                let negated = pattern.first == UInt8(ascii: "!")
                if HostPattern.matchPattern(patternHost[...], negated ? pattern.dropFirst() : pattern[...]) {
                    if negated {
                        active = false
                        arguments.consumeAll()
                        break
                    }
                    active = true
                }
            }

        case "match":
            var matchCursor: Int? = afterKeyword
            let matched = try evaluateMatch(line, &matchCursor, at: location, neverMatch: neverMatch)
            active = neverMatch ? false : matched
            // Words the Match parser left (after an empty "" word) count as extra arguments.
            let wordsLeft = matchCursor.map { $0 < line.count } ?? false
            if !wordsLeft { arguments.consumeAll() }

        case "include":
            try include(&arguments, at: location, active: &active, depth: depth, neverMatch: neverMatch)

        case "hostname":
            let value = try Self.required(&arguments, at: location)
            // The name is expanded when ssh uses it; a token it cannot expand stops ssh then.
            if active && options.hostName == nil && options.finalPassHost == nil {
                do throws(Syntax.ExpansionProblem) {
                    _ = try Syntax.expand(value, tokens: hostNameTokens, environment: nil)
                } catch {
                    throw Self.error(location, "HostName \"\(Syntax.text(value))\": \(error.sentence)")
                }
                options.hostName = Located(value: value, location: location)
            }

        case "user":
            let value = try Self.required(&arguments, at: location)
            if active && options.user == nil { options.user = value }

        case "port":
            let value = try Self.required(&arguments, at: location)
            guard let port = Syntax.port(value), port > 0 else {
                throw Self.error(location, "Bad port '\(Syntax.text(value))'.")
            }
            if active && options.port == nil { options.port = port }

        case "identityfile", "identityfile2":
            let value = try Self.required(&arguments, at: location)
            if active {
                guard options.identityFiles.count < Self.maximumIdentityFiles else {
                    throw Self.error(location, "Too many identity files specified (max \(Self.maximumIdentityFiles)).")
                }
                if !options.identityFiles.contains(where: { $0.value == value }) {
                    options.identityFiles.append(Located(value: value, location: location))
                }
            }

        case "identitiesonly":
            let value = try Self.multistate(&arguments, at: location, Self.flagValues)
            if active && options.identitiesOnly == nil { options.identitiesOnly = value }

        case "stricthostkeychecking":
            let value = try Self.multistate(&arguments, at: location, Self.strictHostKeyValues)
            if active && options.strictHostKeyChecking == nil { options.strictHostKeyChecking = value }

        case "canonicalizehostname":
            let value = try Self.multistate(&arguments, at: location, Self.canonicalizeValues)
            if active && options.canonicalizeHostname == nil { options.canonicalizeHostname = value }

        case "connecttimeout":
            guard let value = arguments.next(), !value.isEmpty else {
                throw Self.error(location, "missing time value.")
            }
            var seconds: Int?
            if value != Array("none".utf8) {
                guard let parsed = Syntax.seconds(value) else { throw Self.error(location, "invalid time value.") }
                seconds = parsed
            }
            if active && options.connectTimeout == nil { options.connectTimeout = seconds }

        case "identityagent":
            let value = try Self.required(&arguments, at: location)
            try checkAgentPath(value, at: location)
            if active && options.identityAgent == nil {
                options.identityAgent = Located(value: value, location: location)
            }

        case "userknownhostsfile":
            let wasUnset = options.userKnownHostsFiles.isEmpty
            var count = 0
            while let file = arguments.next() {
                guard !file.isEmpty else { throw Self.error(location, "keyword \(name) empty argument") }
                if Syntax.equalsIgnoringCase(file, "none") && (count > 0 || arguments.remaining > 0) {
                    throw Self.error(location, "keyword \(name) \"none\" argument must appear alone.")
                }
                count += 1
                if active && wasUnset {
                    guard options.userKnownHostsFiles.count < Self.maximumKnownHostsFiles else {
                        throw Self.error(location, "too many \(name) entries.")
                    }
                    options.userKnownHostsFiles.append(file)
                    options.userKnownHostsLocation = location
                }
            }

        case "proxyjump":
            // The raw rest of the line, not the arguments (ssh's parse_jump takes the string).
            let spec = Array(rest.drop { Syntax.isDelimiterSpace($0) || $0 == Syntax.equals })
            try proxyJump(spec, at: location, active: active)
            arguments.consumeAll()

        case "proxycommand":
            let command = Array(rest.drop { Syntax.isDelimiterSpace($0) || $0 == Syntax.equals })
            if active && options.jumpHost == nil && !options.proxyCommandSet {
                options.proxyCommandSet = true
                options.proxyCommand = command
            }
            arguments.consumeAll()

        case "hostkeyalias":
            let value = try Self.required(&arguments, at: location)
            if active && options.hostKeyAlias == nil { options.hostKeyAlias = value }

        case "tag":
            let value = try Self.required(&arguments, at: location)
            if active && options.tag == nil { options.tag = value }

        case "ignoreunknown":
            let value = try Self.required(&arguments, at: location)
            if active && options.ignoreUnknown == nil { options.ignoreUnknown = value }

        default:
            // Options labctl does not use: their values are not checked (see SSHConfig).
            arguments.consumeAll()
        }

        if arguments.remaining > 0 {
            throw Self.error(location, "keyword \(name) extra arguments at end of line")
        }
    }

    static func required(_ arguments: inout Arguments, at location: Location) throws(SSHConfigError) -> Bytes {
        guard let value = arguments.next(), !value.isEmpty else { throw error(location, "Missing argument.") }
        return value
    }

    static let flagValues: [String: Bool] = ["true": true, "false": false, "yes": true, "no": false]
    static let strictHostKeyValues: [String: String] = [
        "true": "yes", "false": "no", "yes": "yes", "no": "no", "ask": "ask", "off": "no", "accept-new": "accept-new",
    ]
    static let canonicalizeValues: [String: Int] = ["true": 1, "false": 0, "yes": 1, "no": 0, "always": 2]

    static func multistate<Value>(_ arguments: inout Arguments, at location: Location, _ table: [String: Value])
        throws(SSHConfigError) -> Value
    {
        guard let word = arguments.next(), !word.isEmpty else { throw error(location, "missing argument.") }
        guard let value = table[Syntax.text(Syntax.lowercased(word))] else {
            throw error(location, "unsupported option \"\(Syntax.text(word))\".")
        }
        return value
    }

    /// ssh checks an IdentityAgent's ${VAR}s when it reads the line, and a legacy `$VAR` name.
    func checkAgentPath(_ value: Bytes, at location: Location) throws(SSHConfigError) {
        do throws(Syntax.ExpansionProblem) {
            _ = try Syntax.expand(value, tokens: nil, environment: context.environment)
        } catch {
            throw Self.error(location, "Invalid environment expansion \(Syntax.text(value)) (\(error.sentence)).")
        }
        if value.first == Syntax.dollar && (value.count < 2 || value[1] != UInt8(ascii: "{")) {
            let variable = value.dropFirst()
            guard !variable.isEmpty, variable.allSatisfy({ Syntax.isAlnum($0) || $0 == UInt8(ascii: "_") }) else {
                throw Self.error(location, "Invalid environment name \(Syntax.text(value)).")
            }
        }
    }

    mutating func proxyJump(_ spec: Bytes, at location: Location, active: Bool) throws(SSHConfigError) {
        // parse_jump cuts at the first `#` and then, through its rtrim, at the first white space.
        var list = Array(spec.prefix { $0 != Syntax.hash })
        if let space = list.indices.dropFirst().first(where: { Syntax.isCSpace(list[$0]) }) {
            list = Array(list[..<space])
        }
        let none = Syntax.equalsIgnoringCase(spec, "none")
        if !none && !Syntax.isValidJumpList(list) {
            throw Self.error(location, "Invalid ProxyJump \"\(Syntax.text(spec))\"")
        }
        guard active && options.jumpHost == nil && !options.proxyCommandSet else { return }
        if none {
            options.jumpHost = Array("none".utf8)
        } else {
            options.jumpHost = list
            options.proxyCommandSet = true
        }
    }

    mutating func include(_ arguments: inout Arguments, at location: Location, active: inout Bool, depth: Int, neverMatch: Bool)
        throws(SSHConfigError)
    {
        while let argument = arguments.next() {
            guard !argument.isEmpty else { throw Self.error(location, "keyword include empty argument") }
            // Relative paths live in ~/.ssh for a user's config (ssh -F counts as one).
            let pattern: Bytes =
                argument.first == UInt8(ascii: "/") || argument.first == UInt8(ascii: "~")
                ? argument : Array("~/.ssh/".utf8) + argument
            let expanded = Syntax.text(Syntax.globTilde(pattern, environmentHome: context.includeHome))
            switch Syntax.glob(expanded) {
            case .noMatch:
                continue
            case .failed:
                throw Self.error(location, "glob failed for \(Syntax.text(pattern)).")
            case .paths(let paths):
                let wasActive = active
                for path in paths {
                    // A file included where the block does not apply is still read, for its
                    // errors, but nothing in it applies; its Host and Match lines do not leak out.
                    _ = try readFile(
                        path, depth: depth + 1, neverMatch: neverMatch || !wasActive, active: &active,
                        includedAt: location)
                    active = wasActive
                }
            }
        }
    }

    // MARK: - Match

    /// match_cfg_line of 9.2: criteria cut by strdelim, all of them ANDed; `all` alone (or after
    /// one criterion), `canonical` and `final` true only in the final pass.
    mutating func evaluateMatch(_ line: Bytes, _ cursor: inout Int?, at location: Location, neverMatch: Bool)
        throws(SSHConfigError) -> Bool
    {
        func bad(_ why: String) -> SSHConfigError { Self.error(location, "Bad Match condition: \(why)") }
        let remoteUser = options.user ?? Array(context.localUser.utf8)
        let host: Bytes
        if finalPass, let resolved = options.finalPassHost {
            host = resolved
        } else if let hostName = options.hostName {
            host = try expandHostName(hostName)
        } else {
            host = Array(context.hostArgument.utf8)
        }

        var result = true
        var attributes = 0
        var unevaluated: String?
        var sawAll = false
        loop: while let word = Syntax.nextWord(line, &cursor), !word.isEmpty {
            if word.first == Syntax.hash {
                cursor = nil
                break
            }
            let negate = word.first == UInt8(ascii: "!")
            let attribute = negate ? Array(word.dropFirst()) : word
            let criterion = Syntax.text(Syntax.lowercased(attribute))
            if criterion == "all" {
                if attributes > 1 { throw bad("'\(Syntax.text(word))' cannot be combined with other Match attributes") }
                let next = Syntax.nextWord(line, &cursor)
                if let next, let first = next.first {
                    guard first == Syntax.hash else {
                        throw bad("'\(Syntax.text(word))' cannot be combined with other Match attributes")
                    }
                    cursor = nil
                }
                if result { result = !negate }
                sawAll = true
                break loop
            }
            attributes += 1
            if criterion == "canonical" || criterion == "final" {
                if criterion == "final" { wantFinalPass = true }
                if finalPass == negate { result = false }
                continue
            }
            guard let argument = Syntax.nextWord(line, &cursor), let first = argument.first, first != Syntax.hash else {
                throw bad("Missing Match criteria for \(Syntax.text(attribute))")
            }
            let matched: Bool
            switch criterion {
            case "host":
                matched = HostPattern.matchList(name: Syntax.lowercased(host), patterns: argument[...]) == 1
            case "originalhost":
                matched =
                    HostPattern.matchList(name: Syntax.lowercased(context.hostArgument.utf8), patterns: argument[...]) == 1
            case "user":
                matched = HostPattern.matchList(name: remoteUser, patterns: argument[...], lowercasePatterns: false) == 1
            case "localuser":
                matched =
                    HostPattern.matchList(
                        name: Array(context.localUser.utf8), patterns: argument[...], lowercasePatterns: false) == 1
            case "tagged":
                matched = HostPattern.matchList(name: options.tag ?? [], patterns: argument[...], lowercasePatterns: false) == 1
            case "exec", "localnetwork":
                // Never run or probed. It only matters when everything else on the line holds,
                // which is checked below.
                unevaluated = unevaluated ?? "\(Syntax.text(attribute)) \(Syntax.text(argument))"
                continue
            default:
                throw bad("Unsupported Match attribute \(Syntax.text(attribute))")
            }
            if matched == negate { result = false }
        }
        if attributes == 0 && !sawAll { throw bad("One or more attributes required for Match") }
        if let unevaluated, result, !neverMatch {
            // Guessing either way could apply the wrong user, keys or host key policy.
            throw bad(
                "Match \(unevaluated) would decide whether the block applies, and labctl does not run or probe anything to evaluate it"
            )
        }
        return result
    }

    // MARK: - Result

    var hostNameTokens: [UInt8: Bytes] { [UInt8(ascii: "h"): Array(context.hostArgument.utf8)] }

    func expandHostName(_ hostName: Located) throws(SSHConfigError) -> Bytes {
        do throws(Syntax.ExpansionProblem) {
            return try Syntax.expand(hostName.value, tokens: hostNameTokens, environment: nil)
        } catch {
            throw Self.error(hostName.location, "HostName \"\(Syntax.text(hostName.value))\": \(error.sentence)")
        }
    }

    /// The name ssh connects to (its `host` after the first pass): HostName expanded, lowercased
    /// unless it is an address, an address in canonical numeric form.
    func remoteHost() throws(SSHConfigError) -> String {
        var host = context.hostArgument
        if let hostName = options.hostName { host = Syntax.text(try expandHostName(hostName)) }
        let isAddress = Syntax.looksLikeAddress(host) || Syntax.numericAddress(host) != nil
        if !isAddress { host = Syntax.text(Syntax.lowercased(host.utf8)) }
        if isAddress || (options.canonicalizeHostname ?? 0) != 0, let numeric = Syntax.numericAddress(host),
            numeric.lowercased() != host.lowercased()
        {
            host = numeric
        }
        return host
    }

    func resolution(remoteHost: String) throws(SSHConfigError) -> SSHConfigResolution {
        let port = options.port ?? 22
        let remoteUser = options.user.map { Syntax.text($0) } ?? context.localUser
        let shortHost = String(context.localHostName.prefix { $0 != "." })
        let connectionHash = Self.sha1Hex(context.localHostName + remoteHost + String(port) + remoteUser)
        let keyAlias = options.hostKeyAlias.map { Syntax.text(Syntax.lowercased($0)) } ?? context.hostArgument
        // ssh.c's DEFAULT_CLIENT_PERCENT_EXPAND_ARGS.
        let pairs: [(String, String)] = [
            ("C", connectionHash), ("L", shortHost), ("i", String(context.uid)), ("k", keyAlias),
            ("l", context.localHostName), ("n", context.hostArgument), ("p", String(port)), ("d", context.home),
            ("h", remoteHost), ("r", remoteUser), ("u", context.localUser),
        ]
        var tokens: [UInt8: Bytes] = [:]
        for (key, value) in pairs {
            if let byte = key.utf8.first { tokens[byte] = Array(value.utf8) }
        }

        func path(_ value: Bytes, _ keyword: String, at location: Location) throws(SSHConfigError) -> String {
            guard let tilded = Syntax.expandTilde(value, home: context.home) else {
                throw Self.error(location, "\(keyword) \"\(Syntax.text(value))\": no such user for ~")
            }
            do throws(Syntax.ExpansionProblem) {
                return Syntax.text(try Syntax.expand(tilded, tokens: tokens, environment: context.environment))
            } catch {
                throw Self.error(location, "\(keyword) \"\(Syntax.text(value))\": \(error.sentence)")
            }
        }

        var result = SSHConfigResolution()
        if options.hostName != nil { result.hostName = remoteHost }
        result.user = options.user.map { Syntax.text($0) }
        result.port = options.port
        for file in options.identityFiles {
            // ssh skips "none" instead of expanding it.
            result.identityFiles.append(
                Syntax.equalsIgnoringCase(file.value, "none")
                    ? Syntax.text(file.value) : try path(file.value, "IdentityFile", at: file.location))
        }
        result.identitiesOnly = options.identitiesOnly
        if let agent = options.identityAgent {
            result.identityAgent = try path(agent.value, "IdentityAgent", at: agent.location)
        }
        if let jump = options.jumpHost {
            result.proxyJump = Syntax.equalsIgnoringCase(jump, "none") ? "none" : Syntax.text(jump)
        }
        result.proxyCommand = options.proxyCommand.map { Syntax.text($0) }
        if let first = options.userKnownHostsFiles.first, Syntax.equalsIgnoringCase(first, "none") {
            result.userKnownHostsFiles = [Syntax.text(first)]
        } else if let location = options.userKnownHostsLocation {
            for file in options.userKnownHostsFiles {
                result.userKnownHostsFiles.append(try path(file, "UserKnownHostsFile", at: location))
            }
        }
        result.strictHostKeyChecking = options.strictHostKeyChecking
        result.connectTimeout = options.connectTimeout
        result.unsupported = options.unsupported
        return result
    }

    static func sha1Hex(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var digest = Bytes(repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { buffer in _ = SHA1(buffer.baseAddress, buffer.count, &digest) }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    static func localHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 1025)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return SSHConfigSyntax.text(buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })
    }
}
