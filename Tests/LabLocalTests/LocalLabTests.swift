import Foundation
import LabSpec
import SSH
import Testing

@testable import LabLocal

/// Real hosts on this machine: needs root and systemd-nspawn, builds the shared base in
/// /var/cache/labctl the first time (1 to 4 minutes). Uses its own lab name, subnet and
/// bridge so it never touches a user's lab; every test takes its lab down, pass or fail.
@Suite(.serialized, .enabled(if: geteuid() == 0, "the local lab needs root"))
struct LocalLabTests {
    static let labName = "labtest"

    let workDirectory: String
    let lab: LocalLab

    init() async throws {
        workDirectory = NSTemporaryDirectory() + "labctl-labtest-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        var lab = LocalLab(
            definition: LabDefinition(
                name: Self.labName, subnet: IPv4Subnet(cidr: "198.18.77.0/24")!, bridge: "labt0",
                hosts: [
                    LabHostDefinition(name: "alpha", address: "198.18.77.10"),
                    LabHostDefinition(name: "beta", address: "198.18.77.11", user: "ubuntu"),
                    LabHostDefinition(name: "gamma", address: "198.18.77.12"),
                ],
                loginKeyPath: workDirectory + "/id_ed25519", knownHostsPath: workDirectory + "/known_hosts"))
        lab.stopGracePeriod = .seconds(5)
        self.lab = lab
        // A test run that was killed half-way (a CI timeout) may have left this lab up.
        try await lab.down()
    }

    /// Runs `body` with the lab up, and always takes it down and removes the test's files.
    func withLabUp(_ body: () async throws -> Void) async throws {
        do {
            try await lab.up()
            try await body()
        } catch {
            try? await lab.down()
            try? FileManager.default.removeItem(atPath: workDirectory)
            throw error
        }
        try await lab.down()
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    @Test func hostsBootAnswerOverSSHAreIsolatedAndDownLeavesNothing() async throws {
        try await withLabUp {
            for host in lab.definition.hosts {
                let result = try await run(host.name, "hostname; ip -4 -o addr show dev eth0; systemctl is-system-running; id -un")
                #expect(result.succeeded, "\(host.name): \(result.stderrText)")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                #expect(lines.first == host.name)
                #expect(lines.count > 1 && lines[1].contains(" \(host.address)/24 "))
                #expect(lines.count > 2 && lines[2] == "running")
                #expect(lines.last == host.user)
            }
            // The non-root login has passwordless sudo, like a cloud image's default user.
            #expect(try await run("beta", "id -u", become: .sudo).stdoutText == "0\n")
            // The command line `labctl lab ssh` runs works too (OpenSSH, same key and known_hosts).
            #expect(try openSSH("beta", "hostname").stdout == "beta\n")
            // The hosts' apt cache holds the packages the playbooks install offline; git is
            // installed in the base already.
            #expect(try await run("gamma", "ls /var/cache/apt/archives/ | grep -c -E '^(nginx|nodejs|npm)_'").stdoutText == "3\n")
            #expect(try await run("gamma", "git --version").succeeded)

            let marker = "/root/labtest-\(UUID().uuidString)"
            #expect(try await run("alpha", "echo written-on-alpha > \(marker) && cat \(marker)").stdoutText == "written-on-alpha\n")
            #expect(try await run("gamma", "test -e \(marker)").exitStatus == 1)
            #expect(try await run("beta", "test -e \(marker)", become: .sudo).exitStatus == 1)
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(!FileManager.default.fileExists(atPath: lab.base.directory + marker))

            let status = try await lab.status()
            #expect(status.map(\.name) == ["alpha", "beta", "gamma"])
            #expect(status.allSatisfy { $0.running && $0.pid != nil && ($0.memoryBytes ?? 0) > 0 })

            // `lab status --log`: the host's own journal (its systemd and sshd), not nspawn's console.
            let log = try await lab.hostLog(host: "alpha")
            #expect(log.source == .journal, "\(log.note ?? "")")
            #expect(log.lines.contains { $0.contains("systemd") || $0.contains("sshd") }, "\(log.lines)")
            await #expect(throws: LabError.self) { try await lab.hostLog(host: "nosuch") }
        }
        #expect(leftovers() == [])
        #expect(try await lab.status().allSatisfy { !$0.running })
        // With the lab down there is no journal: the console is shown instead, saying why.
        let afterDown = try await lab.hostLog(host: "alpha")
        #expect(afterDown.source == .console && afterDown.note != nil)
    }

    @Test func downCleansUpAfterTheNspawnProcessesWereKilled() async throws {
        try await withLabUp {
            let hosts = lab.definition.hosts.map { hostState($0) }
            for host in hosts {
                let pid = try #require(Machine.readPID(host.nspawnPIDFile))
                kill(pid, SIGKILL)
            }
            // The containers' systemd keeps running without nspawn: down must end it too.
            try await Task.sleep(for: .milliseconds(300))
            #expect(hosts.contains { !Machine.pids(inCgroup: $0.cgroup).isEmpty })
            try await lab.down()
            #expect(hosts.allSatisfy { Machine.pids(inCgroup: $0.cgroup).isEmpty })
            #expect(leftovers() == [])
        }
        #expect(leftovers() == [])
    }

    @Test func upTwiceLeavesRunningHostsAlone() async throws {
        try await withLabUp {
            let before = try await lab.status().map(\.pid)
            let knownHosts = try String(contentsOfFile: lab.definition.knownHostsPath, encoding: .utf8)
            try await lab.up()
            #expect(try await lab.status().map(\.pid) == before)
            #expect(try String(contentsOfFile: lab.definition.knownHostsPath, encoding: .utf8) == knownHosts)
            #expect(knownHosts.split(separator: "\n").count == 3)
            #expect(try await run("gamma", "true").succeeded)
        }
        #expect(leftovers() == [])
    }

    @Test func upStartsAKilledHostAgainWithItsFilesAndIdentity() async throws {
        try await withLabUp {
            #expect(try await run("beta", "echo kept > /home/ubuntu/note").succeeded)
            let knownHosts = try String(contentsOfFile: lab.definition.knownHostsPath, encoding: .utf8)
            let beta = hostState(lab.definition.hosts[1])
            kill(try #require(Machine.readPID(beta.nspawnPIDFile)), SIGKILL)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await lab.status().first { $0.name == "beta" }?.running == false)

            try await lab.up()
            #expect(try await lab.status().allSatisfy(\.running))
            // Same disk, same host key (strict checking passes against the same known_hosts).
            #expect(try await run("beta", "cat /home/ubuntu/note").stdoutText == "kept\n")
            #expect(try String(contentsOfFile: lab.definition.knownHostsPath, encoding: .utf8) == knownHosts)
        }
        #expect(leftovers() == [])
    }

    /// Through the backend protocol alone, as verify's drill and other backends will use it.
    @Test func aHostPoweredOffStopsAtOnceKeepsItsDiskAndPowersOnAgain() async throws {
        let backend: any LabBackend = lab
        try await withLabUp {
            #expect(try await run("alpha", "echo kept > /root/note && sync").succeeded)
            try await backend.powerOff(host: "alpha")
            let status = try await backend.status()
            #expect(status.first { $0.name == "alpha" }?.running == false)
            #expect(status.filter(\.running).map(\.name) == ["beta", "gamma"])
            await #expect(throws: (any Error).self) { _ = try await self.run("alpha", "true") }
            // Powering off a host that is off changes nothing.
            try await backend.powerOff(host: "alpha")

            try await backend.powerOn(host: "alpha")
            #expect(try await backend.status().allSatisfy(\.running))
            #expect(try await run("alpha", "cat /root/note").stdoutText == "kept\n")
            await #expect(throws: LabError.unknownHost("delta", known: ["alpha", "beta", "gamma"])) {
                try await backend.powerOff(host: "delta")
            }
        }
        #expect(leftovers() == [])
    }

    @Test func aHostThatRebootsComesBack() async throws {
        try await withLabUp {
            let before = try #require(try await lab.status().first { $0.name == "gamma" }?.pid)
            // The SSH session may be cut by the reboot; the command's own outcome does not matter.
            _ = try? await run("gamma", "systemctl reboot")
            var after: Int32?
            for _ in 0..<200 {
                try await Task.sleep(for: .milliseconds(100))
                if let pid = try await lab.status().first(where: { $0.name == "gamma" })?.pid, pid != before {
                    after = pid
                    break
                }
            }
            #expect(after != nil, "gamma was not booted again after its reboot")
            // The host shares the machine's kernel, so its uptime and boot_id stay; the age of
            // its PID 1 (a new systemd) shows the reboot.
            var answered = false
            for _ in 0..<100 where !answered {
                if let result = try? await run("gamma", "systemctl is-system-running --wait; ps -o etimes= -p 1"),
                    result.stdoutText.hasPrefix("running")
                {
                    let seconds = Int(result.stdoutText.split(separator: "\n").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 999
                    #expect(seconds < 30)
                    answered = true
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(answered)
        }
        #expect(leftovers() == [])
    }

    @Test func natIsSetUpAndUndone() async throws {
        let forwardBefore = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        var natLab = lab
        natLab.definition.nat = true
        do {
            try await natLab.up()
            let table = Network.natTable(lab: Self.labName)
            let rules = try runTool("nft", ["list", "table", "ip", table]).stdout
            #expect(rules.contains("ip saddr 198.18.77.0/24 oifname != \"labt0\" masquerade"))
            #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == "1\n")
            try await natLab.down()
            #expect(try runTool("nft", ["list", "table", "ip", table], check: false).status != 0)
            #expect(try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8) == forwardBefore)
        } catch {
            try? await natLab.down()
            throw error
        }
        #expect(leftovers() == [])
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    @Test func aFailureHalfWayRemovesWhatUpCreated() async throws {
        // A namespace by the name gamma's would get makes creating gamma fail after alpha and
        // beta were mounted and possibly booted.
        let gamma = hostState(lab.definition.hosts[2])
        try runTool("ip", ["netns", "add", gamma.netns])
        await #expect(throws: LabError.self) { try await lab.up() }
        let left = leftovers()
        try? await lab.down()
        try? FileManager.default.removeItem(atPath: workDirectory)
        _ = try? runTool("ip", ["netns", "delete", gamma.netns], check: false)
        #expect(left == [])
    }

    @Test func upRefusesASubnetThatOneOfTheMachinesInterfacesUses() async throws {
        let machine = try await Preflight.machineNetworks()
        let taken = try #require(machine.first { $0.label.hasPrefix("address ") }, "the machine has no IPv4 address")
        var colliding = lab
        colliding.definition.subnet = taken.network
        colliding.definition.hosts = [
            LabHostDefinition(name: "alpha", address: IPv4Address(taken.network.network.value + 200).description)
        ]
        await #expect(throws: LabError.subnetCollides(subnet: taken.network.description, existing: taken.network.description, where: taken.label)) {
            try await colliding.up()
        }
        #expect(leftovers() == [])
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    @Test func downWhenNothingIsUpDoesNothingAndSucceeds() async throws {
        try await lab.down()
        try await lab.down()
        #expect(leftovers() == [])
        try? FileManager.default.removeItem(atPath: workDirectory)
    }

    // MARK: helpers

    func hostState(_ host: LabHostDefinition) -> HostState {
        HostState(
            lab: Self.labName, host: host.name, address: host.address, user: host.user,
            stateDirectory: lab.definition.stateDirectory)
    }

    /// Runs a command on a lab host through labctl's SSH module: the lab's key, strict host
    /// key checking against the lab's known_hosts.
    func run(_ host: String, _ command: String, become: Become? = nil) async throws -> CommandResult {
        let client = try await SSHClient.connect(lab.sshOptions(host: host))
        do {
            let result = try await client.run(RemoteCommand(command, timeout: .seconds(30), become: become))
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    /// The same through OpenSSH with `sshCommandLine`, what `labctl lab ssh` runs.
    func openSSH(_ host: String, _ command: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let line = try lab.sshCommandLine(host: host)
        return try runTool(line[0], Array(line.dropFirst()) + ["-o", "BatchMode=yes", command], check: false)
    }

    @discardableResult
    func runTool(_ tool: String, _ arguments: [String], check: Bool = true) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if check && process.terminationStatus != 0 {
            Issue.record("\(tool) \(arguments) failed: \(stderr)")
        }
        return (process.terminationStatus, stdout, stderr)
    }

    /// Everything of this lab still on the machine: namespaces, veths, the bridge, mounts,
    /// cgroup directories, runtime directories, NAT table, the state directory.
    func leftovers() -> [String] {
        var found: [String] = []
        let netns = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        found += netns.filter { $0.hasPrefix("labctl-\(Self.labName)-") }.map { "netns \($0)" }
        let links = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []
        let veths = Set(lab.definition.hosts.map { hostState($0).veth })
        found += links.filter { veths.contains($0) || $0 == lab.definition.bridge }.map { "link \($0)" }
        let mounts = Machine.readKernelFile("/proc/self/mountinfo") ?? ""
        found += mounts.split(separator: "\n").filter { $0.contains(lab.definition.stateDirectory) }.map {
            "mount \($0)"
        }
        for hierarchy in ["systemd", "unified", "memory"] {
            let path = "/sys/fs/cgroup/\(hierarchy)/labctl/\(Self.labName)"
            if FileManager.default.fileExists(atPath: path) { found.append("cgroup \(path)") }
        }
        for host in lab.definition.hosts {
            let path = "/run/systemd/nspawn/propagate/" + hostState(host).machine
            if FileManager.default.fileExists(atPath: path) { found.append(path) }
        }
        if FileManager.default.fileExists(atPath: lab.definition.stateDirectory) {
            found.append("state \(lab.definition.stateDirectory)")
        }
        return found
    }
}
