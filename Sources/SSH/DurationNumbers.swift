/// A `Duration` as the numbers labctl prints, records and hands to poll(2): one place for the
/// seconds-and-attoseconds arithmetic.
extension Duration {
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    public var milliseconds: Double { seconds * 1000 }

    /// Whole milliseconds for poll(2): rounded down, at least 0, and Int32.max (24 days) at the
    /// most, whatever the Duration (the multiplication never overflows).
    public var pollMilliseconds: Int32 {
        let (whole, attoseconds) = components
        guard whole >= 0 else { return 0 }
        guard whole < Int64(Int32.max) / 1000 else { return Int32.max }
        return Int32(clamping: max(0, whole * 1000 + attoseconds / 1_000_000_000_000_000))
    }
}
