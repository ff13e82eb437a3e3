import Foundation
import LabSpec

/// The checks of `labctl verify`, in the order they run.
/// A check's name in reports (JSON, JUnit); what each one does, its number and its help are
/// in `VerifyCheck.all`.
public enum CheckKind: String, Codable, Sendable, CaseIterable, Hashable {
    case appDirect = "app-direct"
    case nginx
    case resolution
    case domain
    case balancing
    case failover
    case load
}

public enum CheckStatus: String, Codable, Sendable, Hashable {
    case pass
    case fail
    /// Reported for the user, never a failure (the domain's resolution on this computer).
    case info
    /// Not run, with the reason in the summary (e.g. a drill with one app server).
    case skipped
}

/// What a check saw, so that a failure can be understood without running it again.
public struct Evidence: Codable, Sendable, Hashable {
    /// The request sent or the command run.
    public var target: String?
    public var httpStatus: Int?
    /// The inventory host that answered (or what the response said, when it names no host of
    /// the inventory).
    public var server: String?
    /// The start of the body (whitespace collapsed) or the page's title.
    public var bodyExcerpt: String?
    /// Further lines: command output, error messages, per-request failures.
    public var details: [String]

    public init(target: String? = nil, httpStatus: Int? = nil, server: String? = nil, bodyExcerpt: String? = nil, details: [String] = []) {
        self.target = target
        self.httpStatus = httpStatus
        self.server = server
        self.bodyExcerpt = bodyExcerpt
        self.details = details
    }

    public var isEmpty: Bool {
        target == nil && httpStatus == nil && server == nil && bodyExcerpt == nil && details.isEmpty
    }
}

/// One server's part of a run of requests through the proxy.
public struct ServerShare: Codable, Sendable, Hashable {
    /// The inventory host name, or a description of a response no host could be matched to.
    public var server: String
    public var count: Int
    /// count / all requests, 0...1.
    public var share: Double
    /// What the method leads one to expect (weight share of the live servers); nil when the
    /// method promises no share (ip_hash, least_conn) or the server is not in the inventory.
    public var expectedShare: Double?
    public var backup: Bool
    /// Stopped on purpose during this run (the failover drill).
    public var stopped: Bool

    public init(server: String, count: Int, share: Double, expectedShare: Double? = nil, backup: Bool = false, stopped: Bool = false) {
        self.server = server
        self.count = count
        self.share = share
        self.expectedShare = expectedShare
        self.backup = backup
        self.stopped = stopped
    }
}

/// Latency and errors of a run of requests, in milliseconds.
public struct LatencySummary: Codable, Sendable, Hashable {
    public var requests: Int
    public var errors: Int
    public var p50: Double?
    public var p95: Double?
    public var p99: Double?
    public var max: Double?
    /// Requests per second actually sent.
    public var rate: Double?

    public init(requests: Int, errors: Int, p50: Double?, p95: Double?, p99: Double?, max: Double?, rate: Double? = nil) {
        self.requests = requests
        self.errors = errors
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.max = max
        self.rate = rate
    }

    /// Percentiles of successful requests' latencies (ms); errors are counted, not timed.
    public init(latencies: [Double], errors: Int, rate: Double? = nil) {
        let sorted = latencies.sorted()
        self.init(
            requests: latencies.count + errors, errors: errors,
            p50: Percentile.nearestRank(50, ofSorted: sorted),
            p95: Percentile.nearestRank(95, ofSorted: sorted),
            p99: Percentile.nearestRank(99, ofSorted: sorted),
            max: sorted.last, rate: rate)
    }
}

public struct CheckResult: Codable, Sendable, Hashable {
    public var kind: CheckKind
    /// What was checked, e.g. "app1 answers on :3000".
    public var name: String
    /// The inventory host the check is about, if one.
    public var host: String?
    public var status: CheckStatus
    /// One sentence: what was found (and for a failure, what is wrong).
    public var summary: String
    public var evidence: Evidence
    public var seconds: Double
    /// For load balancing and the drill: who answered how many requests.
    public var distribution: [ServerShare]?
    /// For the load check (and the drill's requests).
    public var latency: LatencySummary?

    public init(
        kind: CheckKind, name: String, host: String? = nil, status: CheckStatus, summary: String,
        evidence: Evidence = Evidence(), seconds: Double = 0, distribution: [ServerShare]? = nil,
        latency: LatencySummary? = nil
    ) {
        self.kind = kind
        self.name = name
        self.host = host
        self.status = status
        self.summary = summary
        self.evidence = evidence
        self.seconds = seconds
        self.distribution = distribution
        self.latency = latency
    }
}

/// What happened during the failover drill, second by second: the HTML report's chart.
public struct DrillTimeline: Codable, Sendable, Hashable {
    /// The width of a bucket in seconds.
    public var bucketSeconds: Double
    /// The app servers in inventory order: one series each.
    public var servers: [String]
    /// From the drill's start (second 0) to its end, one per `bucketSeconds`, none left out.
    public var buckets: [TimelineBucket]
    /// When each server was taken down, started again and back in rotation.
    public var events: [DrillEvent]

    public init(bucketSeconds: Double = 1, servers: [String], buckets: [TimelineBucket], events: [DrillEvent]) {
        self.bucketSeconds = bucketSeconds
        self.servers = servers
        self.buckets = buckets
        self.events = events
    }
}

/// The requests through the proxy whose answers came in one bucket of the drill.
public struct TimelineBucket: Codable, Sendable, Hashable {
    /// Seconds since the drill began.
    public var start: Double
    /// Answers with the app's page, by the app server that gave them (inventory name); an
    /// answer no server could be matched to counts under "unknown".
    public var answered: [String: Int]
    /// Requests that failed (no answer, not 200, not the app's page).
    public var errors: Int
    /// Latency of the successful answers, milliseconds; nil when none.
    public var p50: Double?
    public var p99: Double?

    public init(start: Double, answered: [String: Int], errors: Int, p50: Double?, p99: Double?) {
        self.start = start
        self.answered = answered
        self.errors = errors
        self.p50 = p50
        self.p99 = p99
    }
}

/// A moment of the drill, for the chart's marks.
public struct DrillEvent: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable {
        /// The server was taken down (its service stopped, or its port cut off).
        case down
        /// Its service was started again (or its port opened again).
        case restored
        /// It answered through the proxy again (or directly, where the method shows no more).
        case back
    }

    /// Seconds since the drill began.
    public var at: Double
    public var server: String
    public var kind: Kind
    /// How, in words: "systemctl stop wayshub", "firewall: TCP :3000 from the proxy and this computer rejected".
    public var how: String

    public init(at: Double, server: String, kind: Kind, how: String) {
        self.at = at
        self.server = server
        self.kind = kind
        self.how = how
    }
}

public struct VerifyReport: Codable, Sendable, Hashable {
    /// The version of this JSON's layout; a change that breaks a reader raises it.
    public var schemaVersion: Int = ReportJSON.schemaVersion
    /// The inventory's name.
    public var lab: String
    public var domain: String?
    /// `address:port` of the proxy the domain's requests were sent to.
    public var proxy: String?
    public var startedAt: Date
    public var seconds: Double
    public var checks: [CheckResult]
    /// True when the run was cut short (Ctrl-C): the checks not run are missing.
    public var interrupted: Bool
    /// The failover drill's requests and events over time; nil when no drill ran.
    public var timeline: DrillTimeline?

    public init(
        lab: String, domain: String?, proxy: String?, startedAt: Date, seconds: Double, checks: [CheckResult],
        interrupted: Bool = false, timeline: DrillTimeline? = nil
    ) {
        self.lab = lab
        self.domain = domain
        self.proxy = proxy
        self.startedAt = startedAt
        self.seconds = seconds
        self.checks = checks
        self.interrupted = interrupted
        self.timeline = timeline
    }

    public var failures: [CheckResult] { checks.filter { $0.status == .fail } }
    public func count(_ status: CheckStatus) -> Int { checks.filter { $0.status == status }.count }

    /// Every check passed (or was only reported) and the run was not interrupted.
    public var passed: Bool { failures.isEmpty && !interrupted }

    /// For the process: 0 when everything passed, 1 when a check failed, 130 when interrupted
    /// (the shell's code for SIGINT) with no failure seen before.
    public var exitCode: Int32 {
        if !failures.isEmpty { return 1 }
        return interrupted ? 130 : 0
    }
}
