/// An IPv4 address as its 32-bit value: the one parser of dotted quads for the inventory and
/// the local lab. Hand-written because Foundation on Linux has no address type, and only
/// parsing, printing and prefix arithmetic are needed.
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Strict dotted-quad: four decimal parts 0-255 without leading zeros (which some tools
    /// read as octal), nothing else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part == "0" || !part.hasPrefix("0"), let byte = UInt32(part), byte <= 255
            else { return nil }
            value = value << 8 | byte
        }
        self.value = value
    }

    public var description: String {
        "\(value >> 24 & 255).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 network in CIDR form, such as the local lab's `198.18.42.0/24`.
public struct IPv4Subnet: Sendable, Hashable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let network: IPv4Address
    public let prefixLength: Int

    /// Parses a lab subnet `a.b.c.d/n`. Refuses host bits that are set ("198.18.42.7/24"),
    /// since such a value is almost always a typo for an address, and prefixes outside /8 to
    /// /30: a /31 or /32 leaves no address for a host beside the network, gateway and broadcast.
    public init?(cidr: String) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])),
              let prefix = Int(parts[1]), String(prefix) == parts[1], (8...30).contains(prefix)
        else { return nil }
        let subnet = IPv4Subnet(containing: address, prefixLength: prefix)
        guard subnet.network == address else { return nil }
        self = subnet
    }

    /// The network of any prefix (0 to 32) that holds `address`: a machine's own addresses and routes.
    public init(containing address: IPv4Address, prefixLength: Int) {
        let length = min(max(prefixLength, 0), 32)
        self.prefixLength = length
        self.network = IPv4Address(address.value & IPv4Subnet.mask(length))
    }

    public var mask: UInt32 { IPv4Subnet.mask(prefixLength) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The subnet's first usable address; the lab's bridge on the machine holds it.
    public var gateway: IPv4Address { IPv4Address(network.value + 1) }
    public var description: String { "\(network)/\(prefixLength)" }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }

    public func contains(_ address: String) -> Bool { IPv4Address(address).map(contains) ?? false }

    /// Whether the two networks share at least one address.
    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let m = IPv4Subnet.mask(min(prefixLength, other.prefixLength))
        return network.value & m == other.network.value & m
    }

    static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix)
    }
}
