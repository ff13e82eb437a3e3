import Foundation
import LabSpec

/// Why a drill step failed, as one sentence.
struct DrillFailure: Error {
    var message: String
}

extension VerifyRun {
    // MARK: - 6. The failover drill (and 7. load during it)

    func drill() async {
        let method = inventory.nginx.method
        let servers = inventory.appHosts
        guard let domain = inventory.domain, let proxy = inventory.proxyHosts.first else {
            record(CheckResult(kind: .failover, name: "failover drill", status: .skipped,
                               summary: "needs a domain and a proxy in the inventory"))
            return
        }
        guard servers.count >= 2 else {
            record(CheckResult(kind: .failover, name: "failover drill", status: .skipped,
                               summary: "needs two or more app servers; the inventory has \(servers.count)"))
            if options.checks.contains(.load) {
                record(CheckResult(kind: .load, name: "load during the failover drill", status: .skipped,
                                   summary: "no drill, so no load"))
            }
            return
        }
        // How each server is taken down, asked before any request: the same question removes
        // a firewall cut that an earlier, killed drill left, which would fail the check below.
        progress(.note("asking each app server how the app runs"))
        let controllers = await drillControllers(for: servers)
        // Every server must answer before any is stopped. Then wait out the longest fail_timeout:
        // a failure an nginx worker recorded before now (a deploy's restart, a server that was
        // down a moment ago) could otherwise still count a server out while the drill stops
        // another, and that worker would answer 502 with no live server left.
        progress(.note("checking every app server answers"))
        let clock = ContinuousClock()
        let port = appPort
        let prober = prober
        let answering = await withTaskGroup(of: (String, Bool).self) { group in
            for server in servers {
                group.addTask { (server.name, await prober.get(address: server.address, port: port).succeeded) }
            }
            var names: Set<String> = []
            for await (name, ok) in group where ok { names.insert(name) }
            return names
        }
        let down = servers.filter { !answering.contains($0.name) }
        guard down.isEmpty else {
            // Stopping a server while another is already down could take the whole site down:
            // the drill proves failover on a healthy lab, it does not make an outage worse.
            let names = down.map(\.name).joined(separator: ", ")
            for server in servers {
                let isDown = !answering.contains(server.name)
                record(CheckResult(
                    kind: .failover, name: drillName(server), host: server.name,
                    status: isDown ? .fail : .skipped,
                    summary: isDown
                        ? "\(server.name) does not answer on :\(port), so the drill took no server down"
                        : "not taken down: \(names) \(down.count == 1 ? "is" : "are") already down"))
            }
            if options.checks.contains(.load) {
                record(CheckResult(kind: .load, name: "load during the failover drill", status: .skipped,
                                   summary: "no drill, so no load"))
            }
            return
        }
        let longestFailTimeout = servers.map(failTimeout).max() ?? .seconds(10)
        do {
            let wait = longestFailTimeout + .milliseconds(1250)
            progress(.waiting("waiting out fail_timeout before the drill", seconds: wait.seconds))
            try await clock.sleep(until: clock.now + wait)
        } catch {
            interrupted = true
            return
        }

        let recorder = DrillRecorder()
        let load = options.checks.contains(.load) ? options.loadRate.flatMap { rate in
            rate > 0 ? LoadGenerator.start(rate: rate, prober: prober, address: proxy.address, port: proxyPort,
                                           domain: domain, matcher: pageMatcher, identifier: identifier, recorder: recorder) : nil
        } : nil
        if let load { progress(.note("sending \(Self.rate(load.rate)) requests/s to http://\(domain)/ during the drill")) }

        for server in servers {
            if Task.isCancelled {
                interrupted = true
                break
            }
            switch controllers[server.name] ?? .failure(DrillFailure(message: "no way to take \(server.name) down")) {
            case .success(let controller):
                await drill(server, by: controller, proxy: proxy, domain: domain, method: method, recorder: recorder)
            case .failure(let failure):
                record(CheckResult(kind: .failover, name: drillName(server), host: server.name, status: .fail,
                                   summary: failure.message))
            }
        }

        if let load {
            let outcome = await load.finish()
            let summary = outcome.latency.errors == 0
                ? "\(outcome.latency.requests) requests at \(Self.rate(outcome.latency.rate ?? 0))/s, no errors; "
                    + "p50 \(Self.ms(outcome.latency.p50 ?? 0)), p95 \(Self.ms(outcome.latency.p95 ?? 0)), p99 \(Self.ms(outcome.latency.p99 ?? 0))"
                : "\(outcome.latency.errors) of \(outcome.latency.requests) requests failed during the drill"
            record(CheckResult(
                kind: .load, name: "load at \(Self.rate(load.rate))/s during the drill", host: proxy.name,
                status: outcome.latency.errors == 0 && outcome.latency.requests > 0 ? .pass : .fail,
                summary: outcome.latency.requests == 0 ? "no request was sent" : summary,
                evidence: Evidence(target: "GET http://\(domain)/ via \(proxy.address):\(proxyPort)", details: outcome.errorSamples),
                seconds: outcome.seconds, latency: outcome.latency))
        }
        timeline = recorder.timeline(servers: servers.map(\.name))
    }

    func drillName(_ server: InventoryHost) -> String { "failover: \(server.name) down, the domain still answers" }

    /// The fail_timeout nginx runs for `server`, else the inventory's.
    func failTimeout(_ server: InventoryHost) -> Duration {
        let endpoint = ValueForm.hostInURL(server.address) + ":\(appPort)"
        let live = liveUpstream?.servers.first { $0.endpoint == endpoint }?.failTimeout
        return NginxTime.parse(live ?? server.upstream.failTimeout) ?? .seconds(10)
    }

    /// How each server is taken down, or why it cannot be: `options.stopBy` judged against what
    /// each host says (`DrillHostFacts`). A controller the caller gave is used for all.
    func drillControllers(for servers: [InventoryHost]) async -> [String: Result<any ServiceController, DrillFailure>] {
        if let services {
            return Dictionary(uniqueKeysWithValues: servers.map { ($0.name, .success(services)) })
        }
        let runner = runner
        let unit = unit
        let port = appPort
        let timeout = options.commandTimeout
        let facts = await withTaskGroup(of: (String, Result<DrillHostFacts, any Error>).self) { group in
            for server in servers {
                group.addTask {
                    do {
                        let output = try await runner.run(
                            DrillHostScript.command("inspect", port: port, unit: unit), on: server, privileged: true, timeout: timeout)
                        guard output.succeeded else {
                            let why = (output.stderr + output.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
                            throw DrillFailure(message: why.isEmpty ? "status \(output.status)" : why)
                        }
                        return (server.name, .success(DrillHostFacts.parse(output.stdout)))
                    } catch {
                        return (server.name, .failure(error))
                    }
                }
            }
            var all: [String: Result<DrillHostFacts, any Error>] = [:]
            for await (name, result) in group { all[name] = result }
            return all
        }
        let systemd = SystemdServiceController(runner: runner, unit: unit, timeout: timeout)
        let firewall = FirewallCutController(runner: runner, port: port, timeout: timeout)
        let stopBy = options.stopBy
        var chosen: [String: Result<any ServiceController, DrillFailure>] = [:]
        for server in servers {
            let host = server.name
            switch facts[host] {
            case .failure(let error)?:
                let why = (error as? DrillFailure)?.message ?? String(describing: error)
                chosen[host] = .failure(DrillFailure(message: "could not ask \(host) how the app runs, so it was not taken down: \(why)"))
            case .success(let found)?:
                if found.removedLeftoverCut {
                    progress(.note("removed a firewall rule an interrupted drill had left on \(host)"))
                }
                switch stopBy {
                case .service where found.unitExists, .auto where found.unitRuns:
                    chosen[host] = .success(systemd)
                case .service:
                    chosen[host] = .failure(DrillFailure(message:
                        "\(unit) is not a systemd unit on \(host), so it was not taken down: name the app's unit with --service UNIT, or use --stop-by firewall"))
                case .poweroff:
                    chosen[host] = .failure(DrillFailure(message:
                        "--stop-by poweroff powers a lab host off, and \(host) is not one that labctl runs; use it on a local lab (labctl lab up), or --stop-by firewall"))
                case .firewall, .auto:
                    if found.firewallTool != nil {
                        chosen[host] = .success(firewall)
                    } else {
                        let why = stopBy == .auto ? "the app does not run as the systemd unit \(unit) on \(host), and " : ""
                        chosen[host] = .failure(DrillFailure(message:
                            "\(why)\(host) has neither nft nor iptables to cut :\(port) off, so it was not taken down: install nftables there (\(options.hints.exec(host, ["apt-get", "install", "-y", "nftables"]))), or name the app's unit with --service UNIT"))
                    }
                }
            case nil:
                chosen[host] = .failure(DrillFailure(message: "could not ask \(host) how the app runs"))
            }
        }
        return chosen
    }

    /// Takes `server` down, checks the domain still answers from the others only, brings it
    /// back and waits until it is in rotation again. It is brought back on every way out: a
    /// failed step, an error, a cancelled task.
    private func drill(
        _ server: InventoryHost, by controller: any ServiceController, proxy: InventoryHost, domain: String,
        method: Inventory.BalancingMethod, recorder: DrillRecorder
    ) async {
        let name = drillName(server)
        progress(.started(.failover, name: name))
        let clock = ContinuousClock()
        let start = clock.now
        var details: [String] = []
        var needsRestart = false
        var status = CheckStatus.fail
        var summary = ""
        var shares: [ServerShare]?
        var latency: LatencySummary?
        var evidence = Evidence()
        let down = controller.stopDescription(server)
        do {
            progress(.note(controller is SystemdServiceController ? "stopping \(unit) on \(server.name) (systemctl stop)" : "taking \(server.name) down: \(down)"))
            // Set before the call: a stop cut short may still have taken the server down.
            needsRestart = true
            try await controller.stop(server)
            recorder.event(.down, server: server.name, how: down)
            details.append(down)
            let direct = await prober.get(address: server.address, port: appPort)
            try Task.checkCancellation()
            if direct.succeeded {
                throw DrillFailure(message: "\(server.name) still answers on :\(appPort) after the drill \(down)")
            }
            details.append("\(server.name):\(appPort) no longer answers (\(direct.outcome))")

            let batch = await sendThroughProxy(options.requests, proxy: proxy, domain: domain, recorder: recorder)
            try Task.checkCancellation()
            // Evenness among the others is check 5's business; here: all answered, none by the
            // stopped server, every other server that should serve did.
            let judgement = DistributionJudge.judge(
                counts: batch.counts, failures: batch.failures.count, unidentified: batch.unidentified,
                servers: inventory.appHosts.map(UpstreamServer.init), method: method,
                stopped: [server.name], tolerance: .infinity)
            shares = judgement.shares
            latency = LatencySummary(latencies: batch.latencies, errors: batch.failures.count)
            evidence = batch.evidence(target: "\(batch.total) × GET http://\(domain)/ via \(proxy.address):\(proxyPort)")

            let up = controller.startDescription(server)
            progress(.note(controller is SystemdServiceController ? "starting \(unit) on \(server.name)" : "bringing \(server.name) back: \(up)"))
            try await controller.start(server)
            needsRestart = false
            recorder.event(.restored, server: server.name, how: up)
            details.append(up)
            let back = try await waitUntilBack(server, proxy: proxy, domain: domain, method: method)
            recorder.event(.back, server: server.name, how: "answers again")
            details.append(back)

            if judgement.passed {
                status = .pass
                summary = "\(batch.total) requests while \(server.name) was down, all answered by the others (\(Self.spread(judgement.shares.filter { $0.count > 0 }))); \(back)"
            } else {
                summary = judgement.problems.joined(separator: "; ")
            }
        } catch let failure as DrillFailure {
            summary = failure.message
        } catch is CancellationError {
            summary = "interrupted"
            interrupted = true
        } catch {
            summary = Task.isCancelled ? "interrupted: \(error)" : "\(error)"
            if Task.isCancelled { interrupted = true }
        }
        if needsRestart {
            // A fresh task: it is not cancelled with this one (Ctrl-C), so the lab is left as found.
            let restart = await Task { try await controller.start(server) }.result
            switch restart {
            case .success:
                recorder.event(.restored, server: server.name, how: controller.startDescription(server))
                details.append(controller.startDescription(server) + " again (cleanup)")
            case .failure(let error):
                let hint = controller.manualStart(server, hints: options.hints).map { "; \($0)" } ?? ""
                details.append("COULD NOT BRING \(server.name) BACK: \(error)\(hint)")
                summary += "; \(server.name) could not be brought back\(hint)"
            }
        }
        evidence.details = details + evidence.details
        record(CheckResult(kind: .failover, name: name, host: server.name, status: status, summary: summary,
                           evidence: evidence, seconds: (clock.now - start).seconds, distribution: shares, latency: latency))
    }

    /// Waits until the restarted server answers directly and, where the method sends it
    /// requests from this client, answers through the proxy again. Returns what it saw.
    private func waitUntilBack(_ server: InventoryHost, proxy: InventoryHost, domain: String, method: Inventory.BalancingMethod) async throws -> String {
        let clock = ContinuousClock()
        let start = clock.now
        let failTimeout = failTimeout(server)
        let deadline = start + max(options.rejoinTimeout, failTimeout + .seconds(10))
        var last = "no request sent"
        while true {
            let probe = await prober.get(address: server.address, port: appPort)
            if probe.succeeded { break }
            last = probe.outcome
            guard clock.now < deadline else {
                throw DrillFailure(message: "\(server.name) was brought back but did not answer on :\(appPort) within \(Int((deadline - start).seconds)) s (last: \(last))")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let answeredAt = clock.now
        // nginx skips a failed server for fail_timeout after its last failure, and without a
        // shared `zone` in the upstream (labctl's config has one; a hand-written one may not)
        // each worker keeps its own record of failures. That
        // failure happened before the server answered again, so once fail_timeout has passed
        // since then, every worker will try it again; before, one worker may still count it out,
        // and stopping the next server then leaves that worker with no live server (502s).
        // nginx compares whole seconds there, so fail_timeout 2s can last almost 3 s.
        progress(.waiting("\(server.name) answers again; waiting out fail_timeout", seconds: (failTimeout + .milliseconds(1250)).seconds))
        try await clock.sleep(until: answeredAt + failTimeout + .milliseconds(1250))
        // A backup server gets no requests while the others live, and ip_hash sends this client
        // to one server only: for those, answering directly is all that can be seen.
        guard method != .ipHash, !server.upstream.backup else {
            return "\(server.name) answered directly again after \(Self.ms((answeredAt - start).milliseconds)) "
                + "(then waited out fail_timeout, \(Self.duration(failTimeout)))"
        }
        var sent = 0
        while true {
            let probe = await prober.get(address: proxy.address, port: proxyPort, hostHeader: domain)
            sent += 1
            if probe.succeeded, identifier.identify(probe) == server.name {
                return "\(server.name) answered directly \(String(format: "%.1f", (answeredAt - start).seconds)) s after its start "
                    + "and through the proxy after fail_timeout (\(Self.duration(failTimeout))): back in rotation"
            }
            guard clock.now < deadline else {
                throw DrillFailure(message: "\(server.name) answers directly again but nginx sent it none of \(sent) requests within \(Int((deadline - start).seconds)) s of its restart (fail_timeout: \(Self.duration(failTimeout)))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// "10 s", "2.5 s", "500 ms".
    static func duration(_ value: Duration) -> String {
        value.seconds < 1 ? ms(value.milliseconds) : String(format: "%g s", value.seconds)
    }

    static func rate(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))" : String(format: "%.1f", value)
    }
}

/// Requests at a steady rate, each in its own task so a slow answer does not slow the rate.
final class LoadGenerator: @unchecked Sendable {
    struct Outcome: Sendable {
        var latency: LatencySummary
        var errorSamples: [String]
        var seconds: Double
    }

    let rate: Double
    /// Keeps a lab that stops answering from piling up sockets without end.
    static let maxInFlight = 512
    /// Bounds the run even if nobody calls `finish` (one hour at the rate).
    let maxRequests: Int

    private let lock = NSLock()
    private var stopped = false
    private var latencies: [Double] = []
    private var errors = 0
    private var errorSamples: [String] = []
    private var inFlight = 0
    private var task: Task<Void, Never>?
    private let clock = ContinuousClock()
    private var startedAt: ContinuousClock.Instant
    private var sent = 0

    private init(rate: Double) {
        self.rate = rate
        self.maxRequests = Int(rate * 3600)
        self.startedAt = clock.now
    }

    static func start(
        rate: Double, prober: HTTPProber, address: String, port: Int, domain: String, matcher: PageMatcher,
        identifier: ServerIdentifier, recorder: DrillRecorder
    ) -> LoadGenerator {
        let generator = LoadGenerator(rate: rate)
        generator.task = Task {
            await generator.loop(
                prober: prober, address: address, port: port, domain: domain, matcher: matcher, identifier: identifier, recorder: recorder)
        }
        return generator
    }

    private func loop(
        prober: HTTPProber, address: String, port: Int, domain: String, matcher: PageMatcher,
        identifier: ServerIdentifier, recorder: DrillRecorder
    ) async {
        let start = clock.now
        lock.withLock { startedAt = start }
        await withTaskGroup(of: Void.self) { group in
            var index = 0
            while index < maxRequests {
                let due = start + .seconds(Double(index) / rate)
                try? await clock.sleep(until: due)
                if Task.isCancelled || lock.withLock({ stopped }) { break }
                index += 1
                let admitted = lock.withLock { () -> Bool in
                    sent += 1
                    guard inFlight < Self.maxInFlight else {
                        errors += 1
                        recorder.request(server: nil, milliseconds: nil)
                        if errorSamples.count < 5 { errorSamples.append("request \(sent): more than \(Self.maxInFlight) requests waiting for an answer") }
                        return false
                    }
                    inFlight += 1
                    return true
                }
                guard admitted else { continue }
                let number = index
                group.addTask {
                    let probe = await prober.get(address: address, port: port, hostHeader: domain)
                    let problem = probe.succeeded ? matcher.problem(with: probe.body).map { "200 but \($0)" } : probe.outcome
                    recorder.request(server: problem == nil ? identifier.identify(probe) : nil, milliseconds: problem == nil ? probe.milliseconds : nil)
                    self.lock.withLock {
                        self.inFlight -= 1
                        if let problem {
                            self.errors += 1
                            if self.errorSamples.count < 5 { self.errorSamples.append("request \(number): \(problem)") }
                        } else {
                            self.latencies.append(probe.milliseconds)
                        }
                    }
                }
            }
            await group.waitForAll()
        }
    }

    /// Stops sending, waits for the answers still due, and sums up.
    func finish() async -> Outcome {
        lock.withLock { stopped = true }
        let end = clock.now
        await task?.value
        return lock.withLock {
            let seconds = (end - startedAt).seconds
            let count = latencies.count + errors
            return Outcome(
                latency: LatencySummary(latencies: latencies, errors: errors, rate: seconds > 0 ? Double(count) / seconds : nil),
                errorSamples: errorSamples, seconds: seconds)
        }
    }
}
