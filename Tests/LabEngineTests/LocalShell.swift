import Foundation
import LabEngine
import SSH

/// A `HostSession` that runs commands with this machine's /bin/sh, as sshd would run them
/// with the login shell: the same command line, the same stdin. It lets the runner's tests
/// use a real shell and real files without an SSH server; the SSH path is covered by the
/// end-to-end tests over a test sshd.
final class LocalShellSession: HostSession {
    let commands = CommandLog()

    func run(_ command: RemoteCommand, onLine: (@Sendable (OutputLine) -> Void)?) async throws(SSHError) -> CommandResult {
        commands.append(command.command)
        let start = ContinuousClock.now
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-local-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("stdin")
        let output = directory.appendingPathComponent("stdout")
        let errors = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: input.path, contents: Data(command.stdin))
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command.command]
        do {
            process.standardInput = try FileHandle(forReadingFrom: input)
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = try FileHandle(forWritingTo: errors)
        } catch {
            throw SSHError(host: "local", operation: .exec, kind: .localFile(path: directory.path, reason: "\(error)"))
        }
        let status: Int32 = await withCheckedContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(returning: 127)
            }
        }
        let stdout = (try? Data(contentsOf: output)) ?? Data()
        let stderr = (try? Data(contentsOf: errors)) ?? Data()
        if let onLine {
            for line in String(decoding: stdout, as: UTF8.self).split(separator: "\n") {
                onLine(OutputLine(stream: .stdout, text: String(line)))
            }
        }
        return CommandResult(stdout: stdout, stderr: stderr, exitStatus: status, exitSignal: nil, duration: ContinuousClock.now - start)
    }

    func close() async {}
}

final class CommandLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String] = []
    func append(_ entry: String) { lock.withLock { entries.append(entry) } }
    var all: [String] { lock.withLock { entries } }
}

/// A scratch directory removed when the test ends, even when it fails.
final class Scratch {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("labctl-test-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ content: String) {
        let full = file(name)
        try? FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: full, contents: Data(content.utf8))
    }

    func read(_ name: String) -> String? {
        (try? String(contentsOfFile: file(name), encoding: .utf8))
    }
}

/// Runs a shell snippet here and returns stdout (for probing real files in tests).
func shell(_ script: String, stdin: [UInt8] = []) async -> (status: Int32, stdout: String, stderr: String) {
    let session = LocalShellSession()
    let result = try! await session.run(RemoteCommand("sh -c " + Shell.quote(script), stdin: stdin), onLine: nil)
    return (result.exitStatus, result.stdoutText, result.stderrText)
}

/// The facts an operation's probe reports about this machine, through the real probe script.
func probe(_ operation: any StepOperation) async -> Facts {
    let script = ProbeScript(steps: [(0, operation)])
    let output = await shell(script.script)
    return script.parse(output.stdout)[0] ?? Facts()
}

/// Probe, plan and apply one operation here, as the runner would; returns the plan applied.
@discardableResult
func converge(_ operation: any StepOperation) async throws -> StepPlan {
    let plan = try operation.plan(await probe(operation))
    if !plan.isEmpty {
        let result = await shell(plan.script, stdin: plan.stdin)
        if result.status != 0 { throw StepFailure(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
    return plan
}
