// A 10,000-step playbook (any size with STEPS=N) parsed, checked and run on one host: a private
// sshd on loopback whose login user has /bin/sh and no rc files. Prints the time of each phase
// and the round trips; asserts nothing (these machines are shared: timings are figures, not
// pass/fail).
import Foundation
import LabEngine
import LabSpec
import SSH
import TestSupport

let count = Int(ProcessInfo.processInfo.environment["STEPS"] ?? "") ?? 10_000
let user = "labctlbench"
_ = try? runLocal(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user], check: false)
try runLocal(["usermod", "-p", "*", user])
defer { _ = try? runLocal(["userdel", user], check: false) }

let folder = try TemporaryDirectory(prefix: "labctl-bigbench")
defer { folder.remove() }
try runLocal(["chown", user, folder.path])
let server = try TestSSHServer()
defer { server.stop() }

// Directory steps and guarded commands alternate: every step changes on the first run.
var yaml = "steps:\n"
for index in 0..<count {
    if index % 2 == 0 {
        yaml += "  - { name: d\(index), hosts: all, directory: { path: \"{{vars.root}}/d\(index)\" } }\n"
    } else {
        yaml += "  - { name: c\(index), hosts: all, command: { run: \"touch {{vars.root}}/c\(index)\", creates: \"{{vars.root}}/c\(index)\" } }\n"
    }
}
let path = folder.file("big.yml")
try yaml.write(toFile: path, atomically: true, encoding: .utf8)

func seconds(_ since: ContinuousClock.Instant) -> String {
    let d = ContinuousClock.now - since
    return String(format: "%.2f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
}

var start = ContinuousClock.now
let playbook = try PlaybookParser.parse(fileAt: path)
print("parse \(count) steps: \(seconds(start))")
let facts = HostFacts(name: "h", address: "127.0.0.1", roles: ["app"], vars: ["root": .string(folder.path)])
let target = RunTarget(
    facts: facts, ssh: server.options(user: user), become: nil, context: .forHost(facts, allHosts: [facts], globals: [:]),
    stateDirectory: folder.file("state"))
let runner = PlaybookRunner(targets: [target], options: RunOptions(playbookDirectory: folder.path, backupDirectory: folder.file("backups")))
start = ContinuousClock.now
let issues = runner.validate(playbook)
print("check: \(seconds(start)) (\(issues.count) problems)")
for (label, _) in [("first run", 0), ("no-op run", 1)] {
    start = ContinuousClock.now
    let report = await runner.run(playbook)
    let host = report.hosts[0]
    print("\(label): \(seconds(start)), \(host.count(.changed)) changed, \(host.roundTrips) round trips, exit \(report.exitCode)")
}
