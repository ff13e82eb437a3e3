import Foundation
import LabSpec
import SSH

#if canImport(Glibc)
    import Glibc
#endif

/// A lab of systemd-nspawn hosts on this machine: each host boots a real systemd with sshd,
/// on its own overlay over a shared Debian base, in its own network namespace on a bridge.
/// The hosts outlive the labctl process; everything about them is recorded in the state
/// directory, so `down` and `status` work from a later labctl run.
public struct LocalLab: LabBackend {
    public var definition: LabDefinition
    /// How long `up` waits for each host's SSH login to work.
    public var readinessTimeout: Duration = .seconds(60)
    /// How long `down` lets hosts power off after SIGTERM before killing what is left.
    public var stopGracePeriod: Duration = .seconds(5)

    public init(definition: LabDefinition) {
        self.definition = definition
    }

    var base: BaseImage { BaseImage(cacheDirectory: definition.cacheDirectory) }

    // MARK: up

    /// Builds the base if needed, then creates and boots every host that is not running yet,
    /// and waits until each answers over SSH. Hosts already running are left alone. If a host
    /// cannot be created, what this call created is removed again.
    public func up(rebuild: Bool = false, progress: @escaping @Sendable (LabProgress) -> Void = { _ in })
        async throws(LabError)
    {
        let lab = try definition.validated()
        guard Machine.isRoot else { throw .notRoot(action: "labctl lab up") }
        try await Machine.withLock(lockPath, waiting: { progress(LabProgress(.detail, "waiting for another labctl working on this lab")) }) { () throws(LabError) in
            try await upLocked(lab, rebuild: rebuild, only: nil, progress: progress)
        }
    }

    /// A host's power cut: its processes killed at once (no shutdown), its runtime pieces
    /// (cgroups, mount, network namespace) cleared, its disk and its record kept, so that
    /// `status` shows it stopped and `powerOn` or `up` boots it from the same disk.
    public func powerOff(host: String, progress: @escaping @Sendable (LabProgress) -> Void = { _ in }) async throws(LabError) {
        guard Machine.isRoot else { throw .notRoot(action: "powering a lab host off") }
        guard definition.hosts.contains(where: { $0.name == host }) else {
            throw .unknownHost(host, known: definition.hosts.map(\.name))
        }
        try await Machine.withLock(lockPath, waiting: { progress(LabProgress(.detail, "waiting for another labctl working on this lab")) }) { () throws(LabError) in
            guard let record = try LabState.load(stateDirectory: definition.stateDirectory)?.hosts.first(where: { $0.name == host }),
                isRunning(record)
            else { return }
            progress(LabProgress(.phase, host: host, "powering off"))
            await removeHost(record, keepDisk: true, powerCut: true)
        }
    }

    /// Boots one host that is not running, from its disk, and waits until it answers over SSH.
    public func powerOn(host: String, progress: @escaping @Sendable (LabProgress) -> Void = { _ in }) async throws(LabError) {
        let lab = try definition.validated()
        guard Machine.isRoot else { throw .notRoot(action: "powering a lab host on") }
        guard definition.hosts.contains(where: { $0.name == host }) else {
            throw .unknownHost(host, known: definition.hosts.map(\.name))
        }
        try await Machine.withLock(lockPath, waiting: { progress(LabProgress(.detail, "waiting for another labctl working on this lab")) }) { () throws(LabError) in
            try await upLocked(lab, rebuild: false, only: [host], progress: progress)
        }
    }

    /// Where concurrent labctl runs on one lab wait for each other (/run/lock is cleared at boot).
    var lockPath: String {
        let directory = FileManager.default.fileExists(atPath: "/run/lock") ? "/run/lock" : NSTemporaryDirectory()
        return directory + "/labctl-lab-\(definition.name).lock"
    }

    /// `only`: start just these hosts (the rest are left as they are); nil: every host.
    private func upLocked(_ lab: ValidatedLab, rebuild: Bool, only: Set<String>?, progress: @escaping @Sendable (LabProgress) -> Void)
        async throws(LabError)
    {
        try Preflight.checkCgroupLayout()
        try await Preflight.ensureTools(Preflight.upTools + (definition.nat ? Preflight.natTools : []), progress: progress)
        try lab.checkCollisions(with: try await Preflight.machineNetworks())
        let loginKey = try await ensureLoginKey(progress: progress)
        try await base.ensure(rebuild: rebuild, progress: progress)

        let previous = try LabState.load(stateDirectory: definition.stateDirectory)
        var state =
            previous
            ?? LabState(
                name: definition.name, bridge: definition.bridge, subnet: lab.subnet.description,
                gateway: lab.gateway.description, createdBridge: false, nat: nil, hosts: [])
        if let previous, previous.subnet != lab.subnet.description || previous.bridge != definition.bridge {
            throw .upWithOtherNetwork(lab: definition.name, subnet: previous.subnet, bridge: previous.bridge)
        }

        // Hosts that run are left alone. A host that stopped (its processes killed, the
        // machine restarted) keeps its disk, its upper dir, like a machine that is powered on
        // again; its runtime remains (cgroups, mount, namespace) are cleared first.
        var running: Set<String> = []
        for host in state.hosts where isRunning(host) {
            running.insert(host.name)
        }
        let wanted = lab.hosts.map { $0.name }
        for host in state.hosts where !wanted.contains(host.name) && running.contains(host.name) {
            progress(LabProgress(.warning, host: host.name, "is running but no longer in the inventory; `labctl lab down` stops it"))
        }
        for host in lab.hosts where running.contains(host.name) {
            if let record = state.hosts.first(where: { $0.name == host.name }),
                record.address != host.definition.address || record.user != host.definition.user
            {
                progress(
                    LabProgress(
                        .warning, host: host.name,
                        "runs as \(record.user)@\(record.address) but the inventory says "
                            + "\(host.definition.user)@\(host.definition.address); `labctl lab down` and `up` apply it"))
            } else {
                progress(LabProgress(.detail, host: host.name, "already running at \(host.address)"))
            }
        }
        let toStart = lab.hosts.filter { !running.contains($0.name) && only?.contains($0.name) != false }
        for host in toStart {
            if let old = state.hosts.first(where: { $0.name == host.name }) { await removeHost(old, keepDisk: true) }
        }
        state.hosts.removeAll { host in toStart.contains { $0.name == host.name } && !running.contains(host.name) }
        let newStates = toStart.map {
            HostState(
                lab: definition.name, host: $0.name, address: $0.definition.address, user: $0.definition.user,
                stateDirectory: definition.stateDirectory)
        }
        // Recorded before anything is created, so `down` finds all of it after an interruption.
        state.hosts += newStates
        let bridgeExists = try await Command.capture("ip", ["link", "show", definition.bridge]).succeeded
        if !bridgeExists { state.createdBridge = true }
        try state.save(stateDirectory: definition.stateDirectory)

        do {
            try await Network.ensureBridge(definition.bridge, gateway: lab.gateway, subnet: lab.subnet)
            if definition.nat, state.nat == nil {
                state.nat = try await Network.enableNAT(lab: definition.name, subnet: lab.subnet, bridge: definition.bridge)
                try state.save(stateDirectory: definition.stateDirectory)
            }
            if !toStart.isEmpty {
                progress(LabProgress(.phase, "starting \(toStart.map(\.name).joined(separator: ", "))"))
            }
            let hostKeys = try await startHosts(toStart, states: newStates, lab: lab, loginKey: loginKey)
            try KnownHosts.record(hostKeys, in: definition.knownHostsPath)
            try await waitUntilReady(newStates, progress: progress)
        } catch {
            progress(LabProgress(.warning, "cleaning up after the failure"))
            for host in newStates { await removeHost(host) }
            state.hosts.removeAll { newStates.contains($0) }
            if state.hosts.isEmpty {
                await removeLabWide(state)
            } else {
                try? state.save(stateDirectory: definition.stateDirectory)
            }
            throw error
        }
    }

    /// Boots each host: overlay, identity, login, network, then systemd-nspawn. Returns each
    /// host's address and public host key for known_hosts.
    private func startHosts(
        _ hosts: [ValidatedHost], states: [HostState], lab: ValidatedLab, loginKey: String
    ) async throws(LabError) -> [(address: String, key: String)] {
        let allHosts = lab.hosts
        let basePath = base.directory
        let prefix = lab.subnet.prefixLength
        let gateway = lab.gateway.description
        let bridge = definition.bridge
        let result: Result<[(address: String, key: String)], LabError> = await withTaskGroup(
            of: Result<(address: String, key: String), LabError>.self
        ) { group in
            for (host, state) in zip(hosts, states) {
                group.addTask {
                    do throws(LabError) {
                        let provisioner = HostProvisioner(
                            host: host, state: state, basePath: basePath, allHosts: allHosts, loginKey: loginKey)
                        try await provisioner.prepareFilesystem()
                        try await Network.createHostNetwork(
                            state: state, bridge: bridge, prefixLength: prefix, gateway: gateway)
                        try await provisioner.boot()
                        return .success((state.address, try provisioner.publicHostKey()))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var keys: [(address: String, key: String)] = []
            var firstError: LabError?
            for await outcome in group {
                switch outcome {
                case .success(let key): keys.append(key)
                case .failure(let error): firstError = firstError ?? error
                }
            }
            if let firstError { return .failure(firstError) }
            return .success(keys)
        }
        return try result.get()
    }

    /// Waits until every host's sshd sends its banner, then until the login works and the
    /// host's systemd has finished booting.
    private func waitUntilReady(_ hosts: [HostState], progress: @escaping @Sendable (LabProgress) -> Void)
        async throws(LabError)
    {
        let timeout = readinessTimeout
        let lab = self
        let result: LabError? = await withTaskGroup(of: LabError?.self) { group in
            for host in hosts {
                group.addTask {
                    do throws(LabError) {
                        try await lab.waitForSSH(host, timeout: timeout)
                        let state = try await lab.checkLogin(host)
                        progress(LabProgress(.detail, host: host.name, "up at \(host.address) (\(state))"))
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var first: LabError?
            for await error in group where first == nil { first = error }
            return first
        }
        if let result { throw result }
    }

    private func waitForSSH(_ host: HostState, timeout: Duration) async throws(LabError) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if Machine.sshBanner(address: host.address, timeout: .milliseconds(500)) { return }
            if !isRunning(host) {
                throw .hostDidNotStart(host: host.name, log: LocalLab.readableLog(host.consoleLog, lastLines: 8))
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        throw .hostNotReachable(
            host: host.name, address: host.address, seconds: Int(timeout.components.seconds),
            detail: "no SSH banner on port 22")
    }

    /// Logs in with labctl's own SSH client (the lab's key, strict host key checking against
    /// the lab's known_hosts) and waits for `systemctl is-system-running`. Returns the state.
    private func checkLogin(_ host: HostState) async throws(LabError) -> String {
        do {
            let client = try await SSHClient.connect(sshOptions(address: host.address, user: host.user))
            let result = try await client.run(
                RemoteCommand("systemctl is-system-running --wait", timeout: .seconds(30)))
            await client.close()
            // "degraded" (a unit failed) exits non-zero but the host is up and reachable.
            let state = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            return state.isEmpty ? "state unknown" : state
        } catch {
            throw .hostNotReachable(
                host: host.name, address: host.address, seconds: Int(readinessTimeout.components.seconds),
                detail: error.summary)
        }
    }

    /// How labctl's SSH client reaches a lab host.
    public func sshOptions(host: String) throws(LabError) -> SSHOptions {
        guard let entry = definition.hosts.first(where: { $0.name == host }) else {
            throw .unknownHost(host, known: definition.hosts.map(\.name))
        }
        return sshOptions(address: entry.address, user: entry.user)
    }

    func sshOptions(address: String, user: String) -> SSHOptions {
        SSHOptions(
            endpoint: SSHEndpoint(host: address, user: user),
            credentials: [.keyFile(path: definition.loginKeyPath, passphrase: nil)],
            knownHostsPath: definition.knownHostsPath, hostKeyPolicy: .strict, connectTimeout: .seconds(10))
    }

    private func ensureLoginKey(progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError) -> String {
        try await LoginKey.ensure(at: definition.loginKeyPath, comment: "labctl-lab") { path in
            progress(LabProgress(.detail, "creating the login key pair \(path)"))
        }
    }

    // MARK: down

    /// Stops every host and removes everything `up` created. Safe to run when nothing is up,
    /// after an interrupted `up`, and after the hosts' processes were killed.
    public func down(progress: @escaping @Sendable (LabProgress) -> Void = { _ in }) async throws(LabError) {
        guard Machine.isRoot else { throw .notRoot(action: "labctl lab down") }
        try await Machine.withLock(lockPath, waiting: { progress(LabProgress(.detail, "waiting for another labctl working on this lab")) }) { () throws(LabError) in
            try await downLocked(progress: progress)
        }
    }

    private func downLocked(progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError) {
        var state = try LabState.load(stateDirectory: definition.stateDirectory)
        if state == nil {
            // No record: look for the objects by the names `up` would have given them.
            let hosts = definition.hosts.map {
                HostState(
                    lab: definition.name, host: $0.name, address: $0.address, user: $0.user,
                    stateDirectory: definition.stateDirectory)
            }
            state = LabState(
                name: definition.name, bridge: definition.bridge, subnet: definition.subnet.description,
                gateway: definition.subnet.gateway.description,
                createdBridge: false, nat: nil, hosts: hosts)
        }
        guard let state else { return }
        if !state.hosts.isEmpty {
            progress(LabProgress(.phase, "stopping \(state.hosts.map(\.name).joined(separator: ", "))"))
        }
        let lab = self
        await withTaskGroup(of: Void.self) { group in
            for host in state.hosts {
                group.addTask { await lab.removeHost(host) }
            }
        }
        await removeLabWide(state)
        progress(LabProgress(.detail, "lab \(definition.name) is down"))
    }

    /// Stops one host (only processes the lab started, by PID) and removes its cgroups,
    /// overlay mount, network namespace, veth and, unless `keepDisk`, its state directory
    /// with its upper dir.
    /// `powerCut`: no SIGTERM and no grace period, every process killed at once.
    func removeHost(_ host: HostState, keepDisk: Bool = false, powerCut: Bool = false) async {
        // The supervisor first, so it does not boot the host again.
        if let pid = Machine.readPID(host.supervisorPIDFile), isSupervisor(pid, of: host) {
            Machine.signal(pid, SIGKILL)
        }
        // systemd-nspawn powers the host off on SIGTERM (about a second). What is left after
        // the grace period, or what a SIGKILLed nspawn left behind (its container keeps
        // running without it), is in the host's cgroup and is killed there.
        if !powerCut, let pid = Machine.readPID(host.nspawnPIDFile), isNspawn(pid, of: host) {
            Machine.signal(pid, SIGTERM)
            let deadline = ContinuousClock.now + stopGracePeriod
            while !Machine.pids(inCgroup: host.cgroup).isEmpty, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        for _ in 0..<40 {
            let pids = Machine.pids(inCgroup: host.cgroup)
            if pids.isEmpty { break }
            for pid in pids { Machine.signal(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        Machine.removeCgroup(host.cgroup)
        try? Machine.unmount(host.merged)
        await Network.removeHostNetwork(state: host)
        Machine.removeTree("/run/systemd/nspawn/propagate/" + host.machine)
        if keepDisk {
            for file in [host.supervisorPIDFile, host.nspawnPIDFile, host.directory + "/exit-status"] {
                Machine.removeTree(file)
            }
        } else if !Machine.isMountPoint(host.merged) {
            Machine.removeTree(host.directory)
        }
    }

    /// The bridge, NAT, the lab's cgroup parents and its state directory.
    private func removeLabWide(_ state: LabState) async {
        if let nat = state.nat {
            await Network.disableNAT(nat)
        } else {
            await Network.disableNAT(NATState(table: Network.natTable(lab: state.name), ipForwardBefore: ""))
        }
        await Network.removeBridge(state.bridge, createdByLab: state.createdBridge, gateway: state.gateway)
        Machine.removeEmptyCgroup("labctl/\(state.name)")
        Machine.removeEmptyCgroup("labctl")
        Machine.removeTree(definition.stateDirectory + "/hosts")
        Machine.removeTree(LabState.path(stateDirectory: definition.stateDirectory))
        _ = rmdir(definition.stateDirectory)
        // The default parents (/var/lib/labctl/labs) go too once no lab uses them.
        let parent = (definition.stateDirectory as NSString).deletingLastPathComponent
        if parent.hasSuffix("/labctl/labs") {
            _ = rmdir(parent)
            _ = rmdir((parent as NSString).deletingLastPathComponent)
        }
    }

    // MARK: status

    /// Every host of the inventory (and any other host the lab still runs).
    public func status() async throws(LabError) -> [LabHostStatus] {
        let state = try LabState.load(stateDirectory: definition.stateDirectory)
        var result: [LabHostStatus] = []
        var seen = Set<String>()
        let recorded = state?.hosts ?? []
        for host in definition.hosts {
            seen.insert(host.name)
            let record =
                recorded.first { $0.name == host.name }
                ?? HostState(
                    lab: definition.name, host: host.name, address: host.address, user: host.user,
                    stateDirectory: definition.stateDirectory)
            result.append(status(of: record))
        }
        for host in recorded where !seen.contains(host.name) { result.append(status(of: host)) }
        return result
    }

    private func status(of host: HostState) -> LabHostStatus {
        let pid = Machine.readPID(host.nspawnPIDFile).flatMap { isNspawn($0, of: host) ? $0 : nil }
        let running = pid != nil
        var uptime: Duration?
        if running, let attributes = try? FileManager.default.attributesOfItem(atPath: host.nspawnPIDFile),
            let started = attributes[.modificationDate] as? Date
        {
            uptime = .milliseconds(Int64(Date().timeIntervalSince(started) * 1000))
        }
        return LabHostStatus(
            name: host.name, address: host.address, user: host.user, running: running, pid: pid,
            memoryBytes: running ? Machine.memoryInUse(cgroup: host.cgroup) : nil, uptime: uptime)
    }

    // MARK: ssh

    /// The OpenSSH command line that logs in to `host` with the lab's key and known_hosts.
    public func sshCommandLine(host: String) throws(LabError) -> [String] {
        guard let entry = definition.hosts.first(where: { $0.name == host }) else {
            throw .unknownHost(host, known: definition.hosts.map(\.name))
        }
        return sshCommandLine(host: entry.name, address: entry.address, user: entry.user)
    }

    func sshCommandLine(host: String, address: String, user: String) -> [String] {
        [
            "ssh", "-i", definition.loginKeyPath, "-o", "IdentitiesOnly=yes", "-o",
            "UserKnownHostsFile=\(definition.knownHostsPath)", "-o", "StrictHostKeyChecking=yes",
            "\(user)@\(address)",
        ]
    }

    // MARK: processes

    func isRunning(_ host: HostState) -> Bool {
        guard let pid = Machine.readPID(host.nspawnPIDFile) else { return false }
        return isNspawn(pid, of: host)
    }

    /// A PID read from a file may have been reused by an unrelated process since: only a
    /// process whose command line names this host's machine is treated as the host's.
    func isNspawn(_ pid: Int32, of host: HostState) -> Bool {
        guard Machine.isAlive(pid), let command = Machine.commandLine(of: pid) else { return false }
        return command.first?.hasSuffix("systemd-nspawn") == true && command.contains("--machine=\(host.machine)")
    }

    private func isSupervisor(_ pid: Int32, of host: HostState) -> Bool {
        guard Machine.isAlive(pid), let command = Machine.commandLine(of: pid) else { return false }
        return command.contains(HostProvisioner.supervisorMarker) && command.contains(host.directory)
    }

    /// Lines of the host's console log, without colour codes and known harmless noise.
    static func readableLog(_ path: String, lastLines: Int) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        let noise = [
            "Failed to create symlink /sys/fs/cgroup/", "Some capabilities will not be set",
            "Attempted to remove disk file system under /run/systemd/nspawn/propagate",
            "Press ^] three times within 1s",
        ]
        let lines = text.split(separator: "\n").map { stripANSI(String($0)) }.filter { line in
            !line.trimmingCharacters(in: .whitespaces).isEmpty && !noise.contains { line.contains($0) }
        }
        return lines.suffix(lastLines).joined(separator: "\n")
    }

    private static func stripANSI(_ text: String) -> String {
        var result = ""
        var iterator = text.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            if scalar == "\u{1B}" {
                // Skip "ESC [ params letter".
                while let next = iterator.next(), !(("a"..."z").contains(next) || ("A"..."Z").contains(next)) {}
                continue
            }
            if scalar == "\r" { continue }
            result.unicodeScalars.append(scalar)
        }
        return result
    }
}
