import Foundation
import LabSpec

public enum Percentile {
    /// The nearest-rank percentile (the smallest value with at least p% of the values at or
    /// below it) of values sorted ascending; nil for no values. Nearest rank reports a latency
    /// that was really measured, never an interpolation between two.
    public static func nearestRank(_ p: Double, ofSorted sorted: [Double]) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let clamped = Swift.min(Swift.max(p, 0), 100)
        let rank = Int((clamped / 100 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1]
    }
}

/// An app server as nginx's upstream sees it.
public struct UpstreamServer: Sendable, Hashable {
    public var name: String
    public var weight: Int
    public var backup: Bool

    public init(name: String, weight: Int = 1, backup: Bool = false) {
        self.name = name
        self.weight = weight
        self.backup = backup
    }

    public init(_ host: InventoryHost) {
        self.init(name: host.name, weight: host.upstream.weight, backup: host.upstream.backup)
    }
}

/// Who answered a run of requests through the proxy, and whether that is what the balancing
/// method promises.
public struct DistributionJudgement: Sendable, Hashable {
    public var shares: [ServerShare]
    /// Empty when the distribution is as expected; otherwise one sentence per problem, naming
    /// the server.
    public var problems: [String]
    public var passed: Bool { problems.isEmpty }
}

public enum DistributionJudge {
    /// Judges `counts` (inventory host name → responses it served) for `servers`.
    ///
    /// - `failures`: requests that got no 200 with the app's page.
    /// - `unidentified`: successful responses that named no inventory host, by what they said.
    /// - `stopped`: servers stopped on purpose (the drill): they must serve nothing, and are not
    ///   expected to.
    /// - `tolerance`: for round robin, how far a server's share may be from its weight's share,
    ///   as a fraction of that share (0.5: a 50 % server passes with 25 % to 75 %). Generous
    ///   because nginx balances per worker process: with several workers and fresh connections
    ///   two requests in a row can land on the same server.
    public static func judge(
        counts: [String: Int], failures: Int = 0, unidentified: [String: Int] = [:],
        servers: [UpstreamServer], method: Inventory.BalancingMethod,
        stopped: Set<String> = [], tolerance: Double = 0.5
    ) -> DistributionJudgement {
        let identified = counts.values.reduce(0, +)
        let total = identified + failures + unidentified.values.reduce(0, +)
        var problems: [String] = []
        func share(_ count: Int) -> Double { total == 0 ? 0 : Double(count) / Double(total) }

        let live = servers.filter { !stopped.contains($0.name) }
        // nginx sends to backup servers only when every primary server is down.
        let livePrimaries = live.filter { !$0.backup }
        let serving = livePrimaries.isEmpty ? live : livePrimaries
        let weightSum = serving.reduce(0) { $0 + max($1.weight, 0) }
        let promisesShares = method == .roundRobin && serving.count > 0 && weightSum > 0

        var shares: [ServerShare] = servers.map { server in
            let count = counts[server.name] ?? 0
            let isServing = serving.contains(server)
            // Servers that should be idle (stopped, backups while primaries live) expect 0.
            let expected: Double? = isServing ? (promisesShares ? Double(server.weight) / Double(weightSum) : nil) : 0
            return ServerShare(
                server: server.name, count: count, share: share(count), expectedShare: expected,
                backup: server.backup, stopped: stopped.contains(server.name))
        }
        let known = Set(servers.map(\.name))
        for (name, count) in counts where !known.contains(name) {
            shares.append(ServerShare(server: name, count: count, share: share(count)))
            problems.append("\(name) answered \(count) of \(total) requests but is not an app server of the inventory")
        }
        for (what, count) in unidentified.sorted(by: { $0.key < $1.key }) {
            shares.append(ServerShare(server: what, count: count, share: share(count)))
        }
        if !unidentified.isEmpty {
            let n = unidentified.values.reduce(0, +)
            problems.append("\(n) of \(total) responses did not say which app server answered (no X-Served-By naming an app server, no X-Upstream with its address)")
        }
        if failures > 0 {
            problems.append("\(failures) of \(total) requests failed")
        }
        guard total > 0 else {
            return DistributionJudgement(shares: shares, problems: problems + ["no request was sent"])
        }
        for server in servers where stopped.contains(server.name) {
            if let count = counts[server.name], count > 0 {
                problems.append("\(server.name) answered \(count) of \(total) requests although its service was stopped")
            }
        }
        for server in live where !serving.contains(server) {
            if let count = counts[server.name], count > 0 {
                problems.append("backup server \(server.name) answered \(count) of \(total) requests; nginx uses a backup only when every other server is down")
            }
        }

        switch method {
        case .ipHash:
            // One client address always hashes to the same server while it is up.
            let answered = serving.filter { (counts[$0.name] ?? 0) > 0 }
            if answered.count > 1 {
                let list = answered.map { "\($0.name) \(counts[$0.name] ?? 0)" }.joined(separator: ", ")
                problems.append("ip_hash should send every request of one client to one server, but \(answered.count) servers answered (\(list))")
            } else if answered.isEmpty, identified > 0 {
                problems.append("no live app server answered")
            }
        case .roundRobin, .leastConn:
            for server in serving where (counts[server.name] ?? 0) == 0 {
                problems.append("\(server.name) answered none of \(total) requests")
            }
            // A server that answered nothing already explains every other server's larger share.
            let allUsed = serving.allSatisfy { (counts[$0.name] ?? 0) > 0 }
            if promisesShares && allUsed {
                for server in serving {
                    let count = counts[server.name] ?? 0
                    guard count > 0 else { continue }
                    let expected = Double(server.weight) / Double(weightSum)
                    let observed = share(count)
                    if abs(observed - expected) > tolerance * expected {
                        problems.append(
                            "\(server.name) answered \(count) of \(total) requests (\(percent(observed))), "
                                + "far from its round-robin share of \(percent(expected)) (allowed: \(percent(expected * (1 - tolerance))) to \(percent(min(1, expected * (1 + tolerance)))))")
                    }
                }
            }
        }
        return DistributionJudgement(shares: shares, problems: problems)
    }

    static func percent(_ value: Double) -> String {
        let p = value * 100
        return p == p.rounded() ? "\(Int(p)) %" : String(format: "%.1f %%", p)
    }
}
