import Foundation

/// The forms a value must have before it may reach a host as a path, a URL, a user, a unit or
/// a package name. The inventory's fields and the playbooks' step arguments are judged by the
/// same rules, so that a value refused in one place is refused in the other.
///
/// Quoting already keeps any value from becoming shell syntax; these rules are the second
/// line: a value that starts with `-` is read as an option by the program it is handed to,
/// a relative path lands in the login user's home, a newline splits a config line in two, and
/// none of that is ever what the user meant.
public enum ValueForm: Sendable, Hashable {
    /// An absolute path without control characters (file and directory steps, destinations).
    case absolutePath
    /// An absolute path of plain characters only (letters, digits, `/ . _ - + @ , : =`), for
    /// inventory paths that land inside config files and scripts (the app's folder).
    case plainAbsolutePath
    /// A systemd unit name (`nginx`, `wayshub.service`, `getty@tty1`).
    case unitName
    /// A Debian package name, optionally with `:arch`.
    case packageName
    /// A user or group name, or a numeric id.
    case userOrGroup
    /// A git branch, tag or commit.
    case gitRef
    /// A git repository: https, http, ssh, git or file URL, `user@host:path`, or an absolute path.
    case gitRepository
    /// An http or https URL.
    case httpURL
    /// An http, https or file URL (a download).
    case downloadURL
    /// An IPv4 or IPv6 address or a DNS host name.
    case hostOrAddress
    /// What a symbolic link points to: a path, absolute or relative to the link's folder,
    /// without control characters (`..` is how a relative link climbs, so it is allowed).
    case linkTarget

    /// What the form allows, for messages: "expected <expected>".
    public var expected: String {
        switch self {
        case .absolutePath: return "an absolute path (starting with /) without control characters or . and .. parts"
        case .plainAbsolutePath:
            return "an absolute path such as \"/opt/wayshub\" made of letters, digits and / . _ - + @ , : ="
        case .unitName: return "a systemd unit name such as \"nginx\" or \"wayshub.service\""
        case .packageName: return "a Debian package name such as \"nginx\" (lowercase letters, digits, + - .)"
        case .userOrGroup: return "a user or group name (letters, digits, _ . -, not starting with -) or a numeric id"
        case .gitRef: return "a branch, tag or commit (no spaces, not starting with -, none of ~ ^ : ? * [ \\)"
        case .gitRepository:
            return "a git repository as https://, http://, ssh://, git://, file://, user@host:path or an absolute path"
        case .httpURL: return "an http:// or https:// URL"
        case .downloadURL: return "an https://, http:// or file:// URL"
        case .hostOrAddress: return "an IPv4/IPv6 address or a host name"
        case .linkTarget: return "a path (absolute, or relative to the link's folder) without control characters"
        }
    }

    /// Why `value` does not have this form, or nil when it does.
    public func problem(_ value: String) -> String? {
        if isValid(value) { return nil }
        let shown = ValueForm.shown(value)
        switch self {
        case .absolutePath, .plainAbsolutePath:
            if !value.hasPrefix("/") {
                return "\(shown) is a relative path; expected \(expected) (a relative path would land in the login user's home)"
            }
        default:
            break
        }
        if value.hasPrefix("-") {
            return "\(shown) starts with '-', which the program on the host would read as an option; expected \(expected)"
        }
        return "\(shown) is not \(noun); expected \(expected)"
    }

    /// What a value of this form is, for "'x' is not <noun>".
    var noun: String {
        switch self {
        case .absolutePath, .plainAbsolutePath: return "a usable absolute path"
        case .unitName: return "a systemd unit name"
        case .packageName: return "a Debian package name"
        case .userOrGroup: return "a user or group name"
        case .gitRef: return "a usable git ref"
        case .gitRepository: return "a git repository"
        case .httpURL: return "an http(s) URL"
        case .downloadURL: return "a download URL"
        case .hostOrAddress: return "an address or host name"
        case .linkTarget: return "a usable link target"
        }
    }

    public func isValid(_ value: String) -> Bool {
        guard !value.isEmpty, !ValueForm.hasControlCharacter(value) else { return false }
        switch self {
        case .absolutePath:
            // No `.` or `..` parts: a value spliced into a path ("/etc/nginx/{{vars.x}}") must
            // not climb out of the folder the playbook names.
            return value.hasPrefix("/") && !value.split(separator: "/").contains { $0 == ".." || $0 == "." }
        case .plainAbsolutePath:
            guard value.hasPrefix("/"), value != "/", value.utf8.count <= 1024 else { return false }
            let parts = value.split(separator: "/")
            guard !parts.contains(".."), !parts.contains(".") else { return false }
            return value.unicodeScalars.allSatisfy { ValueForm.isPlain($0) || "/._-+@,:=".unicodeScalars.contains($0) }
        case .unitName:
            guard value.utf8.count <= 255, !value.hasPrefix("-") else { return false }
            return value.unicodeScalars.allSatisfy { ValueForm.isPlain($0) || ":_.\\@-".unicodeScalars.contains($0) }
        case .packageName:
            return value.wholeMatch(of: /[a-z0-9][a-z0-9+.\-]*(:[a-z0-9\-]+)?/) != nil
        case .userOrGroup:
            guard value.utf8.count <= 32 else { return false }
            return value.wholeMatch(of: /[0-9]+|[A-Za-z_][A-Za-z0-9_.\-]*\$?/) != nil
        case .gitRef:
            guard !value.hasPrefix("-"), !value.hasPrefix("/"), !value.hasSuffix("/"), !value.hasSuffix("."),
                  !value.contains(".."), !value.contains("@{"), !value.contains("//"), value.utf8.count <= 255
            else { return false }
            return !value.unicodeScalars.contains { $0 == " " || "~^:?*[\\".unicodeScalars.contains($0) }
        case .gitRepository:
            if value.hasPrefix("/") { return !ValueForm.hasShellSyntax(value) }
            if let components = URLComponents(string: value), let scheme = components.scheme?.lowercased() {
                guard ["https", "http", "ssh", "git", "file"].contains(scheme) else { return false }
                guard scheme == "file" || ValueForm.isURLHost(components) else { return false }
                return !ValueForm.hasShellSyntax(value)
            }
            // scp-like syntax: user@host:path (git reads `a::b` as a remote helper: refused; a
            // user or host starting with `-` would reach ssh as an option).
            guard !value.contains("::") else { return false }
            return value.wholeMatch(of: /[A-Za-z0-9_][A-Za-z0-9._\-]*@[A-Za-z0-9][A-Za-z0-9.\-]*:[^\s]+/) != nil
                && !ValueForm.hasShellSyntax(value)
        case .httpURL, .downloadURL:
            guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased() else {
                return false
            }
            let schemes = self == .httpURL ? ["http", "https"] : ["http", "https", "file"]
            guard schemes.contains(scheme) else { return false }
            // A file URL names a file on the host itself: file:///path or file://localhost/path.
            let local = ["", "localhost"].contains(components.host ?? "") && components.path.hasPrefix("/")
            guard scheme == "file" ? local : ValueForm.isURLHost(components) else { return false }
            return !ValueForm.hasShellSyntax(value)
        case .hostOrAddress:
            return InventorySyntax.isIPv4(value) || InventorySyntax.isIPv6(value) || InventorySyntax.isHostName(value)
        case .linkTarget:
            return value.utf8.count <= 4095
        }
    }

    /// A URL's host is there and, like its user, does not start with `-` (ssh would read it as
    /// an option: `ssh://-oProxyCommand=...`).
    static func isURLHost(_ components: URLComponents) -> Bool {
        guard let host = components.host, !host.isEmpty, !host.hasPrefix("-") else { return false }
        return !(components.user ?? "").hasPrefix("-")
    }

    static func isPlain(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    static func hasControlCharacter(_ value: String) -> Bool {
        value.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Characters a URL or repository never needs and a shell (or a config file) would read:
    /// quotes, backslashes, spaces, `$`, backquotes, `;`, `|`, `&`, `<`, `>`, parentheses, braces.
    static func hasShellSyntax(_ value: String) -> Bool {
        value.unicodeScalars.contains { $0 == " " || "'\"\\$`;|&<>(){}".unicodeScalars.contains($0) }
    }

    /// A host or address as it goes before `:port` in a URL or an nginx `server` line: an IPv6
    /// address in brackets, anything else as it is.
    public static func hostInURL(_ address: String) -> String {
        address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
    }

    /// A value as it appears in a message: quoted, with control characters made visible and
    /// long values cut, so that a hostile value cannot garble the terminal or the message.
    public static func shown(_ value: String) -> String { "'\(escaped(value))'" }

    /// The inside of `shown`: control characters and quotes made visible, cut at 120 characters.
    public static func escaped(_ value: String) -> String {
        var text = visible(String(String.UnicodeScalarView(value.unicodeScalars.prefix(120))), escapingQuotes: true)
        if value.unicodeScalars.count > 120 { text += "…" }
        return text
    }

    /// Text with its control characters (C0, DEL, C1) written as escapes: \n, \t, \r, \xHH.
    /// The one escaper of messages that quote what a user or a file said (`shown`, playbook issues).
    public static func visible(_ value: String, escapingQuotes: Bool = false) -> String {
        var text = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": text += "\\n"
            case "\t": text += "\\t"
            case "\r": text += "\\r"
            case "'" where escapingQuotes: text += "\\'"
            default:
                text += scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
                    ? String(format: "\\x%02X", scalar.value) : String(scalar)
            }
        }
        return text
    }
}
