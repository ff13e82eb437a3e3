import Foundation
import TextLayout

/// Verify's checks, one entry each: its number, what `labctl verify --help` says of it, its rows
/// in docs/verify.md's table (a test compares them), whether plain `labctl verify` runs it, and
/// the work that runs it. Adding a check is its `CheckKind` case, its work on `VerifyRun` and
/// one entry here; the run order, the default set, the help and the docs follow.
public struct VerifyCheck: Sendable {
    /// One row of docs/verify.md's table.
    public struct DocsRow: Sendable, Hashable {
        public var check: String
        public var passesWhen: String
        public var evidence: String
    }

    /// How the check runs.
    enum Work: Sendable {
        /// Its own step, in the registry's order.
        case step(@Sendable (VerifyRun) async -> Void)
        /// Inside another check's step (the load is sent during the drill); asked for without
        /// it, the check is reported skipped with this name and reason.
        case partOf(CheckKind, aloneName: String, aloneReason: String)
    }

    public let kind: CheckKind
    public let number: Int
    /// For `labctl verify --help`: one sentence, no number, no line breaks.
    public let help: String
    public let docs: [DocsRow]
    /// Run by plain `labctl verify`; the others by their flag.
    public let standard: Bool
    /// Needs only HTTP and the inventory (no SSH to the hosts).
    public let httpOnly: Bool
    let work: Work

    public static let all: [VerifyCheck] = [
        VerifyCheck(
            kind: .appDirect, number: 1,
            help: "every app server answers on the app's port with the app's page",
            docs: [
                DocsRow(
                    check: "`app1 answers on :3000` (one per app server)",
                    passesWhen: "`GET http://<app>:3000/` answers 200 with an HTML page (with `expectedText`: containing it)",
                    evidence: "the error (refused, no answer within the deadline) or status, a body excerpt"),
                DocsRow(
                    check: "`every app server runs one version`",
                    passesWhen: "the versions the app servers give (`X-App-Version`; the stand-in sends its package.json's) are one; **skipped** when the app gives none (the real wayshub)",
                    evidence: "each server's version: a fleet left mixed by a stopped rollout, with the fix (`labctl deploy`)"),
            ],
            standard: true, httpOnly: true, work: .step { await $0.checkAppServers() }),
        VerifyCheck(
            kind: .nginx, number: 2,
            help: "nginx on the proxy is active, `nginx -t` passes, the lab's config is included, and the upstream nginx runs is the inventory's (method, servers, weights)",
            docs: [
                DocsRow(
                    check: "`nginx is active on proxy`",
                    passesWhen: "`systemctl is-active nginx` says `active` (over SSH)",
                    evidence: "systemctl's words"),
                DocsRow(
                    check: "`nginx -t passes on proxy`",
                    passesWhen: "`nginx -T` (the same test, run with sudo when the host says `become`) exits 0",
                    evidence: "nginx's error line"),
                DocsRow(
                    check: "`nginx loads <dir>/<conf> on proxy`",
                    passesWhen: "the dump of `nginx -T` contains the lab's config file",
                    evidence: "whether nginx.conf has the `include` line"),
                DocsRow(
                    check: "`nginx's upstream matches the inventory on proxy` (two or more app servers)",
                    passesWhen: "the upstream that the domain's server block proxies to, read from `nginx -T`, has the inventory's method and servers with its `weight`, `backup`, `max_fails` and `fail_timeout`, none marked `down`",
                    evidence: "each difference with both sides (nginx's, the inventory's)"),
            ],
            standard: true, httpOnly: false, work: .step { await $0.checkNginx() }),
        VerifyCheck(
            kind: .resolution, number: 3,
            help: "the domain resolves as your computer would (reported, not required)",
            docs: [
                DocsRow(
                    check: "`<domain> resolves to the proxy on this computer`",
                    passesWhen: "getaddrinfo gives the proxy's address: **reported, never a failure** (INFO)",
                    evidence: "what it resolves to, the hosts-file line to add"),
            ],
            standard: true, httpOnly: true, work: .step { await $0.checkResolution() }),
        VerifyCheck(
            kind: .domain, number: 4,
            help: "http://<domain>/ through the proxy answers 200 with the app's page",
            docs: [
                DocsRow(
                    check: "`http://<domain>/ answers through the proxy`",
                    passesWhen: "200, and the body is byte for byte a page an app server served directly in check 1",
                    evidence: "status with a hint (502: no app server reached; 404: no server block for the domain; refused: nginx not running), body excerpt, `X-Upstream`"),
            ],
            standard: true, httpOnly: true, work: .step { await $0.checkDomain() }),
        VerifyCheck(
            kind: .balancing, number: 5,
            help: "N requests through the proxy reach every app server (the share of each)",
            docs: [
                DocsRow(
                    check: "`load balancing (<method>, N requests)`",
                    passesWhen: "N requests (`requests`, default 50) through the proxy all succeed and are spread as the method **nginx runs** promises, with nginx's weights (below)",
                    evidence: "the distribution, the first failed requests"),
            ],
            standard: true, httpOnly: true, work: .step { await $0.checkBalancing() }),
        VerifyCheck(
            kind: .failover, number: 6,
            help: "with --failover: each app server in turn is taken down, N requests must all succeed from the others, then it is brought back (also on Ctrl-C). How it is taken down (--stop-by): its systemd unit is stopped where the app runs as one (labctl deploy's way; --service UNIT names another unit), else its port is cut off by a firewall rule on the app host (a lab built by hand: npm start, nohup, pm2), which the drill removes again",
            docs: [
                DocsRow(
                    check: "`failover: app1 down, the domain still answers` (one per app server, `failover`)",
                    passesWhen: "with that server taken down (its service stopped or its port cut off), N requests all succeed and none comes from it; it is brought back and back in rotation",
                    evidence: "each step, the distribution, the failed requests"),
            ],
            standard: false, httpOnly: false, work: .step { await $0.drill() }),
        VerifyCheck(
            kind: .load, number: 7,
            help: "with --load R: R requests per second during the drill; errors, p50/p95/p99",
            docs: [
                DocsRow(
                    check: "`load at R/s during the drill` (`loadRate`)",
                    passesWhen: "no request sent at R per second during the whole drill fails",
                    evidence: "errors, latency p50/p95/p99/max"),
            ],
            standard: false, httpOnly: false, work: .partOf(
                .failover, aloneName: "load during the failover drill",
                aloneReason: "load is sent during the failover drill, which was not asked for")),
    ]

    public static func check(_ kind: CheckKind) -> VerifyCheck {
        all.first { $0.kind == kind }!
    }

    /// The numbered list for `labctl verify --help`, wrapped for an 80-column terminal.
    public static var helpList: String {
        all.map { check in
            let lines = TextWrap.lines("\(check.number). \(check.help)", width: 78, indent: 2, hanging: 3)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// docs/verify.md's table of checks, as the registry says it.
    public static var docsTable: String {
        var lines = ["| # | check | passes when | evidence on failure |", "|---|---|---|---|"]
        for check in all {
            for row in check.docs {
                lines.append("| \(check.number) | \(row.check) | \(row.passesWhen) | \(row.evidence) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension CheckKind {
    /// The checks that need nothing but HTTP and the inventory.
    public static var httpOnly: Set<CheckKind> { Set(VerifyCheck.all.filter(\.httpOnly).map(\.kind)) }
    /// What `labctl verify` runs without `--failover` or `--load`.
    public static var standard: Set<CheckKind> { Set(VerifyCheck.all.filter(\.standard).map(\.kind)) }
}
