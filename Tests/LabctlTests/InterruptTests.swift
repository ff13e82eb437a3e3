import Foundation
import TestSupport
import Testing

/// The built labctl stopped mid-run (Ctrl-C, SIGKILL) against a real sshd on loopback: the
/// change it made before it stopped still gets its handler on the next run.
@Suite final class InterruptTests {
    let server: TestSSHServer
    let folder: TemporaryDirectory
    let inventoryPath: String
    let playbookPath: String

    init() throws {
        server = try TestSSHServer()
        folder = try TemporaryDirectory(prefix: "labctl-interrupt")
        try (server.hostPublicKeyLine + "\n").write(toFile: folder.file("known_hosts"), atomically: true, encoding: .utf8)
        inventoryPath = folder.file("inventory.json")
        try """
            { "name": "interrupt-test", "ssh": { "known_hosts": "known_hosts" },
              "hosts": [ { "name": "web1", "address": "127.0.0.1", "port": \(server.port), "key": "\(server.clientKeyPath)", "roles": ["web"] } ] }
            """.write(toFile: inventoryPath, atomically: true, encoding: .utf8)
        // `slow` marks that it started, then takes 3 s unless `fast` exists.
        let root = folder.path
        playbookPath = folder.file("site.yml")
        try """
            steps:
              - name: config
                hosts: web1
                file: { path: "\(root)/site.conf", content: "new\\n" }
                notify: reload nginx
              - name: slow
                hosts: web1
                command: { run: "touch \(root)/slow-started; [ -e \(root)/fast ] || sleep 3; touch \(root)/slow-done", creates: "\(root)/slow-done" }
            handlers:
              - name: reload nginx
                command: "echo reload >> \(root)/reloads"
            """.write(toFile: playbookPath, atomically: true, encoding: .utf8)
    }

    deinit {
        server.stop()
        folder.remove()
    }

    var arguments: [String] { [labctlExecutablePath, "run", "-i", inventoryPath, playbookPath, "--state-dir", folder.file("state")] }

    /// Starts labctl and signals it once the slow step's command is running on the host.
    func startAndSignal(_ signal: Int32, json: String) throws -> Int32 {
        let pid = try spawnBackground(arguments + ["--json", json], logPath: folder.file("log"))
        var waited = 0
        while !FileManager.default.fileExists(atPath: folder.file("slow-started")), waited < 3000 {
            usleep(10_000)
            waited += 1
        }
        try #require(FileManager.default.fileExists(atPath: folder.file("slow-started")), "\(String(describing: try? String(contentsOfFile: folder.file("log"), encoding: .utf8)))")
        kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    func read(_ name: String) -> String? { try? String(contentsOfFile: folder.file(name), encoding: .utf8) }

    func expectTheNextRunsRecover() throws {
        FileManager.default.createFile(atPath: folder.file("fast"), contents: nil)
        let second = try runLocal(arguments, check: false)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.contains("changed  handler: reload nginx"), "\(second.stdout)")
        #expect(second.stdout.contains("pending from an earlier run that stopped before its handlers ran"))
        #expect(read("reloads") == "reload\n")
        let third = try runLocal(arguments + ["--json", folder.file("third.json")], check: false)
        #expect(third.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.file("third.json")))) as? [String: Any]
        let steps = ((report?["hosts"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]]) ?? []
        #expect(steps.compactMap { $0["status"] as? String } == ["ok", "ok"])
        #expect(read("reloads") == "reload\n")
    }

    @Test func sigkillOfLabctlLeavesTheHandlerForTheNextRun() throws {
        let status = try startAndSignal(SIGKILL, json: folder.file("first.json"))
        #expect(status == 128 + SIGKILL)
        #expect(read("site.conf") == "new\n")
        #expect(read("reloads") == nil)
        try expectTheNextRunsRecover()
    }

    /// The first Ctrl-C lets the command under way end, then the run stops: exit 130, and the
    /// --json report has both changes, `interrupted` and the handler still owed.
    @Test func ctrlCFinishesTheCommandUnderWayAndReportsWhatChanged() throws {
        let status = try startAndSignal(SIGINT, json: folder.file("first.json"))
        #expect(status == 130, "\(read("log") ?? "")")
        #expect(FileManager.default.fileExists(atPath: folder.file("slow-done")), "labctl waited for the command under way")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.file("first.json")))) as? [String: Any]
        #expect(report?["interrupted"] as? Bool == true)
        let host = (report?["hosts"] as? [[String: Any]])?.first
        #expect((host?["steps"] as? [[String: Any]])?.compactMap { $0["status"] as? String } == ["changed", "changed"])
        #expect(host?["pendingHandlers"] as? [String] == ["reload nginx"])
        #expect(read("log")?.contains("handlers pending until the next run: reload nginx") == true)
        try expectTheNextRunsRecover()
    }

    /// labctl killed while a step's command runs: the command's processes end too (the
    /// session's sshd is gone), and what the step would have done after them never happens.
    @Test func remoteWorkStopsWhenLabctlIsKilled() throws {
        let root = folder.path
        let book = folder.file("orphan.yml")
        try """
            - name: long install
              hosts: web1
              command: "touch \(root)/slow-started; sh -c 'echo $$ > \(root)/sleep.pid; exec sleep 120' || true; touch \(root)/after-sleep"
            """.write(toFile: book, atomically: true, encoding: .utf8)
        let pid = try spawnBackground([labctlExecutablePath, "run", "-i", inventoryPath, book, "--state-dir", folder.file("state")], logPath: folder.file("log"))
        var waited = 0
        while read("sleep.pid") == nil, waited < 3000 {
            usleep(10_000)
            waited += 1
        }
        let sleeper = try #require(read("sleep.pid").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(read("log") ?? "")")
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // Gone, or a zombie nobody has reaped yet: either way it runs no more.
        func running() -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(sleeper)/stat", encoding: .utf8) else { return false }
            return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false)
        }
        waited = 0
        while running(), waited < 600 {
            usleep(50_000)
            waited += 1
        }
        #expect(!running(), "the step's sleep outlived labctl")
        if running() { kill(sleeper, SIGKILL) }
        usleep(300_000)
        #expect(!FileManager.default.fileExists(atPath: folder.file("after-sleep")), "the rest of the step ran after labctl was gone")
    }

    /// A second labctl on a host another is working on stops at once and names it; with
    /// --wait it runs once the first is done.
    @Test func aSecondRunOnTheSameHostNamesTheFirstOrWaits() throws {
        let other = folder.file("other.yml")
        try "- { name: other, hosts: web1, command: \"echo other >> \(folder.path)/other\" }\n".write(toFile: other, atomically: true, encoding: .utf8)
        // The first run holds the host until the test lets it go (no race with the lock's own
        // few seconds of patience on a busy machine).
        let held = folder.file("held.yml")
        try """
            - name: held
              hosts: web1
              command: "touch \(folder.path)/slow-started; i=0; while [ ! -e \(folder.path)/release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"
            """.write(toFile: held, atomically: true, encoding: .utf8)
        let pid = try spawnBackground(
            [labctlExecutablePath, "run", "-i", inventoryPath, held, "--state-dir", folder.file("state")], logPath: folder.file("log"))
        defer { FileManager.default.createFile(atPath: folder.file("release"), contents: nil) }
        defer {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        var waited = 0
        while !FileManager.default.fileExists(atPath: folder.file("slow-started")), waited < 3000 {
            usleep(10_000)
            waited += 1
        }
        let second = try runLocal([labctlExecutablePath, "run", "-i", inventoryPath, other, "--state-dir", folder.file("state")], check: false)
        #expect(second.status == 2)
        #expect(second.stdout.contains("another run holds this host's lock \(folder.file("state/lock")), labctl (pid \(pid) on "), "\(second.stdout)")
        #expect(second.stdout.contains("running held.yml since "))
        #expect(read("other") == nil)
        FileManager.default.createFile(atPath: folder.file("release"), contents: nil)
        let waiting = try runLocal([labctlExecutablePath, "run", "-i", inventoryPath, other, "--state-dir", folder.file("state"), "--wait"], check: false)
        #expect(waiting.status == 0, "\(waiting.stdout)")
        #expect(read("other") == "other\n")
    }
}
