// The SSH executor's figures on loopback against private sshd instances, each beside OpenSSH
// (`ssh` with a ControlMaster) doing the same work. Prints medians and ratios; asserts nothing.
//
// The login user's shell is /bin/sh with no rc files: sshd starts the login shell for every
// command, and a heavy ~/.bashrc (pyenv, nvm) would swamp what is being measured for both tools.
import Foundation
import SSH
import TestSupport

let user = "labctlbench"
_ = try? runLocal(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user], check: false)
// "*" rather than useradd's "!": sshd without PAM refuses key logins to a locked account.
try runLocal(["usermod", "-p", "*", user])
defer { _ = try? runLocal(["userdel", user], check: false) }

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func time(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return seconds(ContinuousClock.now - start)
}

/// OpenSSH with a ControlMaster for one server.
struct OpenSSH {
    let server: TestSSHServer
    let control: String

    init(server: TestSSHServer) {
        self.server = server
        control = server.directory.file("cm")
    }

    var common: [String] {
        [
            "ssh", "-q", "-p", String(server.port), "-i", server.clientKeyPath, "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=\(server.knownHostsPath)", "-o", "StrictHostKeyChecking=yes",
        ]
    }

    func startMaster() throws {
        try runLocal(common + ["-o", "ControlMaster=yes", "-o", "ControlPath=\(control)", "-o", "ControlPersist=60", "-fN", "\(user)@127.0.0.1"])
    }

    func stopMaster() {
        _ = try? runLocal(common + ["-o", "ControlPath=\(control)", "-O", "exit", "\(user)@127.0.0.1"], check: false)
    }

    func run(_ command: String) throws {
        try runLocal(common + ["-o", "ControlPath=\(control)", "\(user)@127.0.0.1", command])
    }

    func connectOnce() throws {
        try runLocal(common + ["-o", "ControlMaster=no", "-o", "ControlPath=none", "\(user)@127.0.0.1", "true"])
    }
}

func row(_ name: String, _ ours: Double, _ theirs: Double) {
    let ratio = theirs / ours
    print(
        name.padding(toLength: 44, withPad: " ", startingAt: 0)
            + String(format: "%9.2f ms %12.2f ms %8.1fx", ours * 1000, theirs * 1000, ratio))
}

let servers = try (0..<10).map { _ in try TestSSHServer() }
let first = servers[0]
func options(_ server: TestSSHServer) -> SSHOptions { server.options(user: user) }

print("labctl ssh-bench: loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores, login shell /bin/sh")
print("".padding(toLength: 44, withPad: " ", startingAt: 0) + "   labctl      OpenSSH+CM    ratio")

// 1. connect + handshake + host key + auth (OpenSSH: a whole `ssh host true` without a master).
var ours: [Double] = []
var theirs: [Double] = []
let openSSH = OpenSSH(server: first)
for _ in 0..<15 {
    ours.append(try await time {
        let client = try await SSHClient.connect(options(first))
        await client.close()
    })
    theirs.append(try await time { try openSSH.connectOnce() })
}
row("connect + auth (median of 15)", median(ours), median(theirs))

// 2. one command on an open session.
let client = try await SSHClient.connect(options(first))
try openSSH.startMaster()
ours = []
theirs = []
for _ in 0..<100 {
    ours.append(try await time { _ = try await client.run(RemoteCommand("true")) })
    theirs.append(try await time { try openSSH.run("true") })
}
row("command on an open session (median of 100)", median(ours), median(theirs))

// 3. 20 commands in a row on one session.
ours = []
theirs = []
for _ in 0..<5 {
    ours.append(try await time { for index in 0..<20 { _ = try await client.run(RemoteCommand("echo \(index)")) } })
    theirs.append(try await time { for index in 0..<20 { try openSSH.run("echo \(index)") } })
}
row("20 commands on one session (median of 5)", median(ours), median(theirs))
await client.close()
openSSH.stopMaster()

// 4. 10 hosts x 20 commands, hosts in parallel, connections included.
let masters = servers.map(OpenSSH.init)
ours = []
theirs = []
for _ in 0..<3 {
    ours.append(try await time {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers {
                group.addTask {
                    let session = try await SSHClient.connect(options(server))
                    for index in 0..<20 { _ = try await session.run(RemoteCommand("echo \(index)")) }
                    await session.close()
                }
            }
            try await group.waitForAll()
        }
    })
    theirs.append(try await time {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for master in masters {
                group.addTask {
                    try master.startMaster()
                    for index in 0..<20 { try master.run("echo \(index)") }
                    master.stopMaster()
                }
            }
            try await group.waitForAll()
        }
    })
}
row("10 hosts x 20 cmds, parallel (median of 3)", median(ours), median(theirs))
servers.forEach { $0.stop() }
