import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks of names and addresses shared by the inventory's fields.
public enum InventorySyntax {
    public static func isIPv4(_ text: String) -> Bool { IPv4Address(text) != nil }

    static func isIPv6(_ text: String) -> Bool {
        // The C library's parser: IPv6 text forms (compression, embedded IPv4) are too
        // intricate to re-implement for a validity check.
        guard text.contains(":") else { return false }
        var buffer = in6_addr()
        return inet_pton(AF_INET6, text, &buffer) == 1
    }

    /// The canonical text of an IPv6 address, so "::1" and "0:0::1" count as one address.
    static func canonicalIPv6(_ text: String) -> String? {
        var buffer = in6_addr()
        guard inet_pton(AF_INET6, text, &buffer) == 1 else { return nil }
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &buffer, &output, socklen_t(output.count)) != nil else { return nil }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A DNS host name (RFC 1123 labels). A name whose last label is all digits is refused: it
    /// is a mistyped IPv4 address such as "300.1.1.1", not a name.
    static func isHostName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy(isLabel) else { return false }
        return !labels.last!.allSatisfy { $0.isNumber }
    }

    private static func isLabel(_ label: Substring) -> Bool {
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
        return label.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") }
    }

    /// Host names in the inventory double as names of containers, machines and nginx upstream
    /// entries: a lowercase DNS label keeps them valid everywhere.
    public static func isLowercaseLabel(_ text: String) -> Bool {
        guard (1...63).contains(text.utf8.count), text.first != "-", text.last != "-" else { return false }
        return text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// Role names: lowercase letters, digits, '-' and '_', starting with a letter.
    static func isRoleName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, ("a"..."z").contains(first), text.utf8.count <= 63 else { return false }
        return text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    /// A login name as `useradd` accepts it by default.
    public static func isUserName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, ("a"..."z").contains(first) || first == "_",
              text.utf8.count <= 32 else { return false }
        return text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// A single file or directory name: no '/', not "." or "..", printable ASCII without spaces.
    static func isFileName(_ text: String) -> Bool {
        guard !text.isEmpty, text != ".", text != "..", text.utf8.count <= 255 else { return false }
        return text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// A Linux network interface name (at most 15 bytes, IFNAMSIZ - 1).
    static func isInterfaceName(_ text: String) -> Bool {
        guard (1...15).contains(text.utf8.count), text != ".", text != ".." else { return false }
        return text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    /// An nginx time value: "5s", "500ms", "1m30s", "10" (seconds).
    static func isNginxTime(_ text: String) -> Bool {
        text.wholeMatch(of: /([0-9]+(ms|s|m|h|d|w|M|y)?)+/) != nil && text.first?.isNumber == true
    }

    static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.unicodeScalars.allSatisfy {
            ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0)
        }
    }
}
