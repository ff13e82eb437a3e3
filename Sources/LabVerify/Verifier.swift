import AsyncHTTPClient
import Foundation
import LabSpec

public struct VerifyOptions: Sendable, Hashable {
    /// Which checks run. `failover` and `load` also need `failover`/`loadRate` below.
    public var checks: Set<CheckKind>
    /// Requests for the load-balancing check and for each server of the drill.
    public var requests: Int
    /// Requests per second sent during the drill (check 7); nil: none.
    public var loadRate: Double?
    /// Every HTTP request must be answered within this.
    public var requestTimeout: Duration
    /// Every command on a host must end within this (enforced on the host too).
    public var commandTimeout: Duration
    /// Round robin: how far a server's share may be from its weight's share, as a fraction of it.
    public var tolerance: Double
    /// How long a restarted server may take to answer in rotation again.
    public var rejoinTimeout: Duration
    /// The app's systemd unit; nil: the app's name (the deploy playbook names it so).
    public var serviceUnit: String?
    /// How the drill takes an app server down.
    public var stopBy: DrillStopMethod
    /// How hints name labctl commands (the inventory the user gave).
    public var hints: LabctlHints
    /// Text the app's page must contain (case-insensitive), e.g. "WaysHub"; nil: any HTML page.
    /// The page through the proxy is compared with the pages the app servers serve directly.
    public var expectedText: String?

    public init(
        failover: Bool = false, loadRate: Double? = nil, requests: Int = 50,
        requestTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(30),
        tolerance: Double = 0.5, rejoinTimeout: Duration = .seconds(30),
        serviceUnit: String? = nil, expectedText: String? = nil,
        checks: Set<CheckKind>? = nil, stopBy: DrillStopMethod = .auto, hints: LabctlHints = LabctlHints()
    ) {
        var chosen = checks ?? CheckKind.standard
        if failover { chosen.insert(.failover) }
        if loadRate != nil { chosen.insert(.load) }
        self.checks = chosen
        self.requests = requests
        self.loadRate = loadRate
        self.requestTimeout = requestTimeout
        self.commandTimeout = commandTimeout
        self.tolerance = tolerance
        self.rejoinTimeout = rejoinTimeout
        self.serviceUnit = serviceUnit
        self.expectedText = expectedText
        self.stopBy = stopBy
        self.hints = hints
    }
}

/// What the verifier is doing, for a live display.
public enum VerifyEvent: Sendable {
    case started(CheckKind, name: String)
    case finished(CheckResult)
    /// A step inside a long check (the drill): "stopping wayshub on app1".
    case note(String)
    /// A wait of known length starts now ("waiting out fail_timeout"): a display counts it down.
    case waiting(String, seconds: Double)
}

/// The checks of `labctl verify` (issue 6) against the lab an inventory describes.
///
/// HTTP goes from this machine straight to the hosts' addresses: the domain's requests are sent
/// to the proxy's address with the domain as Host, so they never depend on name resolution.
public struct Verifier: Sendable {
    public let inventory: Inventory
    public let options: VerifyOptions
    private let commandRunner: (any HostCommandRunner)?
    private let serviceController: (any ServiceController)?

    /// - `commandRunner`: runs the nginx checks' commands; nil: SSH with the inventory's settings
    ///   (made and closed by `run`). One given here is closed by its owner.
    /// - `serviceController`: takes app servers down and up again for the drill, every one the
    ///   same way; nil: as `options.stopBy` says, through the command runner.
    public init(
        inventory: Inventory, options: VerifyOptions = VerifyOptions(),
        commandRunner: (any HostCommandRunner)? = nil, serviceController: (any ServiceController)? = nil
    ) {
        self.inventory = inventory
        self.options = options
        self.commandRunner = commandRunner
        self.serviceController = serviceController
    }

    /// Runs the chosen checks in order and reports every result. Never throws: what goes wrong
    /// is a failed check with its evidence. Cancelling the task (Ctrl-C) stops after the current
    /// step; a service the drill stopped is started again before this returns.
    public func run(progress: @escaping @Sendable (VerifyEvent) -> Void = { _ in }) async -> VerifyReport {
        let startedAt = Date()
        let clock = ContinuousClock()
        let start = clock.now
        let ownRunner = commandRunner == nil ? SSHHostCommandRunner(inventory: inventory) : nil
        let runner: any HostCommandRunner = commandRunner ?? ownRunner!
        let unit = options.serviceUnit ?? inventory.app?.name ?? "wayshub"
        let client = HTTPProber.makeClient(timeout: options.requestTimeout)
        let context = VerifyRun(
            inventory: inventory, options: options, prober: HTTPProber(client: client, timeout: options.requestTimeout),
            runner: runner, services: serviceController, unit: unit, progress: progress)

        await context.runAll()

        try? await client.shutdown()
        await ownRunner?.close()
        let proxy = inventory.proxyHosts.first.map { "\(HTTPProber.urlHost($0.address)):\(inventory.nginx.listenPort)" }
        return VerifyReport(
            lab: inventory.name, domain: inventory.domain, proxy: proxy, startedAt: startedAt,
            seconds: (clock.now - start).seconds, checks: context.results, interrupted: context.interrupted,
            timeline: context.timeline)
    }
}

/// The state of one run: results so far and what the app servers said about themselves.
final class VerifyRun {
    let inventory: Inventory
    let options: VerifyOptions
    let prober: HTTPProber
    let runner: any HostCommandRunner
    /// How the drill takes every server down, when the caller chose one; nil: per host, as
    /// `options.stopBy` says.
    let services: (any ServiceController)?
    let unit: String
    let progress: @Sendable (VerifyEvent) -> Void

    var results: [CheckResult] = []
    var interrupted = false
    /// The page each app server served directly (check 1), to recognise it through the proxy.
    var directPages: [String: String] = [:]
    var identifier: ServerIdentifier
    /// The upstream nginx runs for the domain (from `nginx -T` on the first proxy), which the
    /// balancing check judges by.
    var liveUpstream: NginxUpstream?
    /// The drill's requests and events over time, once a drill ran.
    var timeline: DrillTimeline?

    init(
        inventory: Inventory, options: VerifyOptions, prober: HTTPProber, runner: any HostCommandRunner,
        services: (any ServiceController)?, unit: String, progress: @escaping @Sendable (VerifyEvent) -> Void
    ) {
        self.inventory = inventory
        self.options = options
        self.prober = prober
        self.runner = runner
        self.services = services
        self.unit = unit
        self.progress = progress
        self.identifier = ServerIdentifier(appHosts: inventory.appHosts, port: inventory.app?.port ?? 3000)
    }

    var appPort: Int { inventory.app?.port ?? 3000 }
    var proxyPort: Int { inventory.nginx.listenPort }

    func runAll() async {
        for check in VerifyCheck.all where options.checks.contains(check.kind) {
            guard case .step(let work) = check.work else { continue }
            if Task.isCancelled {
                interrupted = true
                break
            }
            await work(self)
        }
        for check in VerifyCheck.all where options.checks.contains(check.kind) && !interrupted {
            guard case .partOf(let host, let name, let reason) = check.work, !options.checks.contains(host) else { continue }
            record(CheckResult(kind: check.kind, name: name, status: .skipped, summary: reason))
        }
        if Task.isCancelled { interrupted = true }
    }

    func record(_ result: CheckResult) {
        results.append(result)
        progress(.finished(result))
    }

    // MARK: - The app's page

    var pageMatcher: PageMatcher {
        PageMatcher(references: directPages, expectedText: options.expectedText)
    }

    // MARK: - 1. App servers directly

    func checkAppServers() async {
        guard inventory.app != nil else {
            record(CheckResult(kind: .appDirect, name: "app servers answer directly", status: .skipped,
                               summary: "the inventory has no app section"))
            return
        }
        let hosts = inventory.appHosts
        guard !hosts.isEmpty else {
            record(CheckResult(kind: .appDirect, name: "app servers answer directly", status: .fail,
                               summary: "the inventory has no host with the role 'app'"))
            return
        }
        for host in hosts { progress(.started(.appDirect, name: "\(host.name) answers on :\(appPort)")) }
        let port = appPort
        let prober = prober
        let probes = await withTaskGroup(of: (Int, HTTPProbe).self) { group in
            for (index, host) in hosts.enumerated() {
                group.addTask { (index, await prober.get(address: host.address, port: port)) }
            }
            var all = [HTTPProbe?](repeating: nil, count: hosts.count)
            for await (index, probe) in group { all[index] = probe }
            return all.compactMap { $0 }
        }
        var servedBy: [String: String] = [:]
        // Only for a server that does not answer: ask it why, so the hint is true of it.
        var whyDown: [String: String] = [:]
        for (host, probe) in zip(hosts, probes) where probe.error != nil {
            whyDown[host.name] = await notAnsweringHint(host)
        }
        for (host, probe) in zip(hosts, probes) {
            var evidence = Evidence(target: probe.target, httpStatus: probe.status, server: probe.servedBy, bodyExcerpt: probe.excerpt)
            let name = "\(host.name) answers on :\(port)"
            let passed: Bool
            let summary: String
            if let error = probe.error {
                passed = false
                summary = "no answer from \(host.address):\(port): \(error); " + (whyDown[host.name] ?? "is the app running on \(host.name)?")
            } else if probe.status != 200 {
                passed = false
                summary = "answered \(probe.outcome) instead of 200"
            } else if let problem = PageMatcher(references: [:], expectedText: options.expectedText).problem(with: probe.body) {
                passed = false
                summary = "answered 200 but \(problem)"
            } else {
                passed = true
                summary = "200 with the app's page in \(Self.ms(probe.milliseconds))"
                    + (probe.servedBy.map { ", X-Served-By: \($0)" } ?? "")
                    + (probe.appVersion.map { ", version \($0)" } ?? "")
            }
            if passed {
                directPages[host.name] = probe.body
                if let served = probe.servedBy { servedBy[host.name] = served }
            } else if !probe.body.isEmpty, probe.excerpt == nil {
                evidence.details.append("empty body")
            }
            record(CheckResult(kind: .appDirect, name: name, host: host.name, status: passed ? .pass : .fail,
                               summary: summary, evidence: evidence, seconds: probe.milliseconds / 1000))
        }
        identifier.learn(servedBy)
        recordVersions(of: Array(zip(hosts.map(\.name), probes.map(\.appVersion))))
    }

    /// Why an app server does not answer, as a hint with the labctl command to run: asked on the
    /// host (is the app a systemd unit, does it run), never a systemd hint for an app that is
    /// not a unit. The same question removes a firewall rule a killed drill left behind.
    func notAnsweringHint(_ host: InventoryHost) async -> String {
        let hints = options.hints
        let log = hints.exec(host.name, ["journalctl", "-u", unit, "-n", "50", "--no-pager"])
        guard let output = try? await runner.run(
            DrillHostScript.command("inspect", port: appPort, unit: unit), on: host, privileged: true, timeout: options.commandTimeout),
            output.succeeded
        else { return "is the app running on \(host.name)?" }
        let facts = DrillHostFacts.parse(output.stdout)
        if facts.removedLeftoverCut {
            return "a firewall rule left by an interrupted failover drill cut the port off, and labctl has removed it now: run \(hints.labctl(["verify"])) again once nginx's fail_timeout has passed"
        }
        if facts.unitRuns {
            return "\(unit) is active on \(host.name) but nothing answers: see its log with \(log)"
        }
        if facts.unitExists {
            return "\(unit) is \(facts.activeState ?? "not active") on \(host.name): start it with \(hints.exec(host.name, ["systemctl", "start", unit])) (its log: \(log))"
        }
        return "the app is not the systemd unit \(unit) on \(host.name): is it running there? (labctl deploy runs it as that unit)"
    }

    /// One version on every app server, outside a rollout: a mixed fleet (a rollout that
    /// stopped half-way, a server left behind) serves users different apps.
    func recordVersions(of versions: [(host: String, version: String?)]) {
        let name = "every app server runs one version"
        let known = versions.compactMap { entry in entry.version.map { (entry.host, $0) } }
        guard !known.isEmpty else {
            record(CheckResult(kind: .appDirect, name: name, status: .skipped,
                               summary: "the app does not say its version (no X-App-Version header)"))
            return
        }
        let listed = versions.map { "\($0.host) \($0.version ?? "unknown")" }.joined(separator: ", ")
        let distinct = Set(known.map(\.1))
        if distinct.count == 1, known.count == versions.count {
            record(CheckResult(kind: .appDirect, name: name, status: .pass, summary: "version \(distinct.first!) on \(versions.map(\.host).joined(separator: ", "))"))
        } else {
            record(CheckResult(kind: .appDirect, name: name, status: .fail,
                               summary: "the app servers run different versions (\(listed)): finish the rollout with labctl deploy"))
        }
    }

    // MARK: - 2. nginx on the proxy (SSH)

    func checkNginx() async {
        let proxies = inventory.proxyHosts
        guard !proxies.isEmpty else {
            record(CheckResult(kind: .nginx, name: "nginx on the proxy", status: .fail,
                               summary: "the inventory has no host with the role 'proxy'"))
            return
        }
        for proxy in proxies {
            if Task.isCancelled { return }
            await checkNginx(on: proxy)
        }
    }

    private func checkNginx(on proxy: InventoryHost) async {
        let clock = ContinuousClock()
        var start = clock.now
        let activeName = "nginx is active on \(proxy.name)"
        let testName = "nginx -t passes on \(proxy.name)"
        let includeName = "nginx loads \(inventory.nginx.directory)/\(inventory.nginx.confName) on \(proxy.name)"
        progress(.started(.nginx, name: activeName))
        let timeout = options.commandTimeout
        do {
            let active = try await runner.run("systemctl is-active nginx", on: proxy, privileged: false, timeout: timeout)
            let state = active.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            record(CheckResult(
                kind: .nginx, name: activeName, host: proxy.name, status: active.succeeded && state == "active" ? .pass : .fail,
                summary: active.succeeded && state == "active"
                    ? "systemctl reports nginx active"
                    : "systemctl reports nginx \(state.isEmpty ? "not active (status \(active.status))" : state); start it with \(options.hints.exec(proxy.name, ["systemctl", "start", "nginx"])) (its log: \(options.hints.exec(proxy.name, ["journalctl", "-u", "nginx", "-n", "50", "--no-pager"])))",
                evidence: Evidence(target: "systemctl is-active nginx", details: Self.lines(active.stdout + active.stderr)),
                seconds: (clock.now - start).seconds))

            // `nginx -T` runs the same test as `nginx -t` and also prints every file it loaded,
            // which proves the include works: one command instead of two plus a grep.
            start = clock.now
            progress(.started(.nginx, name: testName))
            let dump = try await runner.run("nginx -T", on: proxy, privileged: true, timeout: timeout)
            let testLines = Self.lines(dump.stderr)
            record(CheckResult(
                kind: .nginx, name: testName, host: proxy.name, status: dump.succeeded ? .pass : .fail,
                summary: dump.succeeded
                    ? "the configuration test is successful"
                    : "the configuration test failed: \(testLines.first { $0.contains("emerg") || $0.contains("error") } ?? testLines.last ?? "status \(dump.status)")",
                evidence: Evidence(target: "nginx -t (as nginx -T)", details: testLines),
                seconds: (clock.now - start).seconds))

            progress(.started(.nginx, name: includeName))
            let confPath = inventory.nginx.confPath
            let loaded = dump.stdout.contains("# configuration file \(confPath):")
            let includeLine = dump.stdout.split(separator: "\n").first {
                $0.contains("include") && $0.contains(inventory.nginx.directoryPath + "/")
            }.map { $0.trimmingCharacters(in: .whitespaces) }
            let includeStatus: CheckStatus = loaded ? .pass : .fail
            let includeSummary: String
            if loaded {
                includeSummary = "nginx loads it" + (includeLine.map { " (\($0))" } ?? "")
            } else if !dump.succeeded {
                includeSummary = "cannot tell: nginx -T failed"
            } else if let includeLine {
                includeSummary = "nginx.conf has '\(includeLine)' but nginx does not load \(confPath); is the file there?"
            } else {
                includeSummary = "nginx does not load \(confPath): nginx.conf's http block has no 'include \(inventory.nginx.directoryPath)/*;'"
            }
            record(CheckResult(
                kind: .nginx, name: includeName, host: proxy.name, status: includeStatus, summary: includeSummary,
                evidence: Evidence(target: "nginx -T", details: includeLine.map { [$0] } ?? [])))
            if dump.succeeded, inventory.appHosts.count > 1, let domain = inventory.domain {
                checkUpstream(in: dump.stdout, on: proxy, domain: domain)
            }
        } catch {
            let why = String(describing: error)
            let seconds = (clock.now - start).seconds
            for name in [activeName, testName, includeName] where !results.contains(where: { $0.name == name }) {
                record(CheckResult(kind: .nginx, name: name, host: proxy.name, status: .fail,
                                   summary: "could not run the check on \(proxy.name): \(why)",
                                   evidence: Evidence(details: [why]), seconds: seconds))
            }
        }
    }

    /// What nginx balances by, against what the inventory says: a difference fails, both sides shown.
    private func checkUpstream(in dump: String, on proxy: InventoryHost, domain: String) {
        let name = "nginx's upstream matches the inventory on \(proxy.name)"
        progress(.started(.nginx, name: name))
        guard let live = NginxUpstream.live(in: dump, domain: domain, port: proxyPort) else {
            record(CheckResult(
                kind: .nginx, name: name, host: proxy.name, status: .fail,
                summary: "nginx has no upstream for \(domain): no server block for it on port \(proxyPort) proxies to an upstream; labctl deploy writes one"))
            return
        }
        if liveUpstream == nil { liveUpstream = live }
        let wanted = NginxUpstream.wanted(inventory)
        func describe(_ method: String, _ servers: [NginxUpstream.Server]) -> String {
            method + ": " + servers.map { server in
                var text = "\(server.endpoint) weight=\(server.weight) max_fails=\(server.maxFails) fail_timeout=\(server.failTimeout)"
                if server.backup { text += " backup" }
                if server.down { text += " down" }
                return text
            }.joined(separator: ", ")
        }
        let differences = live.differences(from: inventory)
        let evidence = Evidence(target: "nginx -T, upstream \(live.name)", details: [
            "nginx:         " + describe(live.method, live.servers),
            "the inventory: " + describe(wanted.method, wanted.servers),
        ])
        record(CheckResult(
            kind: .nginx, name: name, host: proxy.name, status: differences.isEmpty ? .pass : .fail,
            summary: differences.isEmpty
                ? "upstream \(live.name): \(live.method), \(live.servers.count) servers as the inventory says"
                : "nginx runs other load balancing than the inventory says: " + differences.joined(separator: "; ") + " (labctl deploy writes the inventory's)",
            evidence: evidence))
    }

    // MARK: - 3. The domain's resolution on this computer

    func checkResolution() async {
        guard let domain = inventory.domain else {
            record(CheckResult(kind: .resolution, name: "the domain resolves to the proxy", status: .skipped,
                               summary: "the inventory names no domain"))
            return
        }
        let name = "\(domain) resolves to the proxy on this computer"
        progress(.started(.resolution, name: name))
        guard let proxy = inventory.proxyHosts.first else {
            record(CheckResult(kind: .resolution, name: name, status: .skipped, summary: "the inventory has no proxy"))
            return
        }
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await SystemResolver.resolve(domain, timeout: .seconds(5))
        var proxyAddresses: Set<String> = [proxy.address]
        if case .addresses(let list) = await SystemResolver.resolve(proxy.address, timeout: .seconds(5)) {
            proxyAddresses.formUnion(list)
        }
        let hint = "the HTTP checks do not need it; for a browser, add '\(proxy.address) \(domain)' to the hosts file (labctl hosts --apply)"
        let result: CheckResult
        switch outcome {
        case .addresses(let addresses) where !proxyAddresses.isDisjoint(with: addresses):
            result = CheckResult(kind: .resolution, name: name, host: proxy.name, status: .pass,
                                 summary: "\(domain) resolves to \(addresses.joined(separator: ", "))",
                                 evidence: Evidence(target: "getaddrinfo(\(domain))", details: addresses))
        case .addresses(let addresses):
            result = CheckResult(kind: .resolution, name: name, host: proxy.name, status: .info,
                                 summary: "\(domain) resolves to \(addresses.joined(separator: ", ")), not to the proxy \(proxy.address); \(hint)",
                                 evidence: Evidence(target: "getaddrinfo(\(domain))", details: addresses))
        case .failed(let why):
            result = CheckResult(kind: .resolution, name: name, host: proxy.name, status: .info,
                                 summary: "\(domain) does not resolve on this computer (\(why)); \(hint)",
                                 evidence: Evidence(target: "getaddrinfo(\(domain))", details: [why]))
        case .timedOut:
            result = CheckResult(kind: .resolution, name: name, host: proxy.name, status: .info,
                                 summary: "resolving \(domain) took more than 5 s; \(hint)",
                                 evidence: Evidence(target: "getaddrinfo(\(domain))"))
        }
        var timed = result
        timed.seconds = (clock.now - start).seconds
        record(timed)
    }

    // MARK: - 4. The domain through the proxy

    func checkDomain() async {
        guard let domain = inventory.domain else {
            record(CheckResult(kind: .domain, name: "the domain answers through the proxy", status: .skipped,
                               summary: "the inventory names no domain"))
            return
        }
        let proxies = inventory.proxyHosts
        guard !proxies.isEmpty else {
            record(CheckResult(kind: .domain, name: "http://\(domain)/ answers through the proxy", status: .fail,
                               summary: "the inventory has no host with the role 'proxy'"))
            return
        }
        for proxy in proxies {
            let name = proxies.count == 1 ? "http://\(domain)/ answers through the proxy" : "http://\(domain)/ answers through \(proxy.name)"
            progress(.started(.domain, name: name))
            let probe = await prober.get(address: proxy.address, port: proxyPort, hostHeader: domain)
            let server = identifier.identify(probe)
            var evidence = Evidence(target: probe.target, httpStatus: probe.status,
                                    server: server ?? identifier.describeUnknown(probe), bodyExcerpt: probe.excerpt)
            let passed: Bool
            let summary: String
            if let error = probe.error {
                passed = false
                summary = error == "connection refused"
                    ? "nothing listens on \(proxy.address):\(proxyPort): is nginx running?"
                    : "no answer from \(proxy.address):\(proxyPort): \(error)"
            } else if probe.status == 502 || probe.status == 504 {
                passed = false
                summary = "answered \(probe.status!): nginx reached no app server; are the app services running?"
            } else if probe.status == 404 {
                passed = false
                summary = "answered 404: no server block for \(domain) answered (is the lab's config included?)"
            } else if probe.status != 200 {
                passed = false
                summary = "answered \(probe.outcome) instead of 200"
            } else if let problem = pageMatcher.problem(with: probe.body) {
                passed = false
                summary = "answered 200 but \(problem)"
            } else {
                passed = true
                summary = "200 with the app's page in \(Self.ms(probe.milliseconds))" + (server.map { ", from \($0)" } ?? "")
            }
            if !passed, let upstream = probe.upstream { evidence.details.append("X-Upstream: \(upstream)") }
            record(CheckResult(kind: .domain, name: name, host: proxy.name, status: passed ? .pass : .fail,
                               summary: summary, evidence: evidence, seconds: probe.milliseconds / 1000))
        }
    }

    // MARK: - 5. Load balancing

    func checkBalancing() async {
        // What nginx runs decides what a right distribution is; the inventory only when nginx's
        // upstream could not be read.
        let method = liveUpstream.flatMap { Inventory.BalancingMethod(rawValue: $0.method) } ?? inventory.nginx.method
        let servers = inventory.appHosts.map { host -> UpstreamServer in
            let endpoint = ValueForm.hostInURL(host.address) + ":\(appPort)"
            guard let live = liveUpstream?.servers.first(where: { $0.endpoint == endpoint }) else { return UpstreamServer(host) }
            return UpstreamServer(name: host.name, weight: live.weight, backup: live.backup)
        }
        let name = "load balancing (\(method.rawValue), \(options.requests) requests)"
        guard let domain = inventory.domain, let proxy = inventory.proxyHosts.first else {
            record(CheckResult(kind: .balancing, name: name, status: .skipped,
                               summary: "needs a domain and a proxy in the inventory"))
            return
        }
        progress(.started(.balancing, name: name))
        let clock = ContinuousClock()
        let start = clock.now
        let batch = await sendThroughProxy(options.requests, proxy: proxy, domain: domain)
        let judgement = DistributionJudge.judge(
            counts: batch.counts, failures: batch.failures.count, unidentified: batch.unidentified,
            servers: servers, method: method, tolerance: options.tolerance)
        let spread = Self.spread(judgement.shares)
        let summary = judgement.passed
            ? "\(batch.total) requests, all answered: \(spread); \(Self.verdict(method))"
            : judgement.problems.joined(separator: "; ") + " (\(spread))"
        record(CheckResult(
            kind: .balancing, name: name, host: proxy.name, status: judgement.passed ? .pass : .fail,
            summary: summary, evidence: batch.evidence(target: "\(batch.total) × GET http://\(domain)/ via \(proxy.address):\(proxyPort)"),
            seconds: (clock.now - start).seconds, distribution: judgement.shares,
            latency: LatencySummary(latencies: batch.latencies, errors: batch.failures.count)))
    }

    static func verdict(_ method: Inventory.BalancingMethod) -> String {
        switch method {
        case .roundRobin: return "round robin, roughly even as expected"
        case .leastConn: return "least_conn, every server used"
        case .ipHash: return "ip_hash, sticky to one server as expected"
        }
    }

    /// `count` requests through the proxy, one after another, each on a fresh connection.
    /// During the drill, `recorder` keeps each answer for the timeline.
    func sendThroughProxy(_ count: Int, proxy: InventoryHost, domain: String, recorder: DrillRecorder? = nil) async -> ProxyBatch {
        var batch = ProxyBatch()
        let matcher = pageMatcher
        for index in 0..<count {
            if Task.isCancelled { break }
            let probe = await prober.get(address: proxy.address, port: proxyPort, hostHeader: domain)
            let failures = batch.failures.count
            batch.add(probe, index: index, matcher: matcher, identifier: identifier)
            if let recorder {
                let failed = batch.failures.count > failures
                recorder.request(server: failed ? nil : identifier.identify(probe), milliseconds: failed ? nil : probe.milliseconds)
            }
        }
        return batch
    }

    // MARK: - Formatting helpers

    static func ms(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f ms", value) : "\(Int(value.rounded())) ms"
    }

    static func spread(_ shares: [ServerShare]) -> String {
        shares.map { "\($0.server) \($0.count) (\(DistributionJudge.percent($0.share)))" }.joined(separator: ", ")
    }

    static func lines(_ text: String, limit: Int = 20) -> [String] {
        let all = text.split(separator: "\n").map { String($0) }.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return all.count > limit ? Array(all.suffix(limit)) : all
    }
}

/// Whether a body is the app's page.
struct PageMatcher: Sendable {
    /// What each app server served directly.
    var references: [String: String]
    var expectedText: String?

    /// Nil when the body is the app's page; otherwise what is wrong with it, as a phrase.
    func problem(with body: String) -> String? {
        if let expectedText, body.range(of: expectedText, options: .caseInsensitive) == nil {
            return "the page does not contain '\(expectedText)'" + (PageText.excerpt(body).map { " (it starts: \($0))" } ?? "")
        }
        if references.isEmpty {
            return body.range(of: "<html", options: .caseInsensitive) == nil
                ? "the body is not an HTML page" + (PageText.excerpt(body).map { " (\($0))" } ?? "") : nil
        }
        // The app's page through the proxy is byte for byte the page an app server serves.
        return references.values.contains(body)
            ? nil : "the page is not the one the app servers serve directly" + (PageText.excerpt(body).map { " (got \($0))" } ?? "")
    }
}

/// Which app server answered a response through the proxy.
struct ServerIdentifier: Sendable {
    let appHosts: [InventoryHost]
    let port: Int
    /// X-Served-By value → inventory host, learned from the app servers' direct answers.
    private(set) var learned: [String: String] = [:]
    /// X-Served-By values that more than one app server gave (no use for telling them apart).
    private(set) var ambiguous: Set<String> = []

    init(appHosts: [InventoryHost], port: Int) {
        self.appHosts = appHosts
        self.port = port
    }

    mutating func learn(_ servedBy: [String: String]) {
        var owners: [String: Set<String>] = [:]
        for (host, value) in servedBy { owners[value, default: []].insert(host) }
        for (value, hosts) in owners {
            if hosts.count == 1 { learned[value] = hosts.first! } else { ambiguous.insert(value) }
        }
    }

    /// The inventory host that answered: the app's X-Served-By when it names one server, else
    /// the upstream address nginx reports in X-Upstream (the last one tried answered).
    func identify(_ probe: HTTPProbe) -> String? {
        if let served = probe.servedBy, let host = learned[served] { return host }
        if let upstream = probe.upstream, let last = Self.lastUpstream(upstream) {
            if let host = appHosts.first(where: { Self.sameEndpoint(last, address: $0.address, port: port) }) {
                return host.name
            }
        }
        if let served = probe.servedBy, !ambiguous.contains(served), appHosts.contains(where: { $0.name == served }) {
            return served
        }
        return nil
    }

    func describeUnknown(_ probe: HTTPProbe) -> String {
        var parts: [String] = []
        if let served = probe.servedBy { parts.append("X-Served-By \(served)") }
        if let upstream = probe.upstream { parts.append("X-Upstream \(upstream)") }
        return parts.isEmpty ? "unknown (no X-Served-By or X-Upstream header)" : "unknown (\(parts.joined(separator: ", ")))"
    }

    /// `$upstream_addr` lists every server tried, "a:3000, b:3000", and " : " between groups
    /// after an internal redirect; the last is the one that answered.
    static func lastUpstream(_ value: String) -> String? {
        let last = value.components(separatedBy: " : ").last?.split(separator: ",").last
        return last.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    static func sameEndpoint(_ text: String, address: String, port: Int) -> Bool {
        text == "\(address):\(port)" || text == "[\(address)]:\(port)"
    }
}

/// Responses of a run of requests through the proxy, sorted by who answered.
struct ProxyBatch: Sendable {
    var counts: [String: Int] = [:]
    var unidentified: [String: Int] = [:]
    var failures: [(index: Int, probe: HTTPProbe, problem: String)] = []
    var latencies: [Double] = []
    var total = 0

    mutating func add(_ probe: HTTPProbe, index: Int, matcher: PageMatcher, identifier: ServerIdentifier) {
        total += 1
        if !probe.succeeded {
            failures.append((index, probe, probe.outcome))
            return
        }
        if let problem = matcher.problem(with: probe.body) {
            failures.append((index, probe, "200 but \(problem)"))
            return
        }
        latencies.append(probe.milliseconds)
        if let host = identifier.identify(probe) {
            counts[host, default: 0] += 1
        } else {
            unidentified[identifier.describeUnknown(probe), default: 0] += 1
        }
    }

    /// The first failures in full, as evidence.
    func evidence(target: String) -> Evidence {
        var evidence = Evidence(target: target)
        if let first = failures.first {
            evidence.httpStatus = first.probe.status
            evidence.bodyExcerpt = first.probe.excerpt
        }
        for failure in failures.prefix(5) {
            var line = "request \(failure.index + 1): \(failure.problem)"
            if let upstream = failure.probe.upstream { line += ", X-Upstream \(upstream)" }
            evidence.details.append(line)
        }
        if failures.count > 5 { evidence.details.append("… and \(failures.count - 5) more failed requests") }
        return evidence
    }
}
