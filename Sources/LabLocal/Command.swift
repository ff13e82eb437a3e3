import Foundation
import SSH
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs the machine's tools (ip, mount, ssh-keygen, debootstrap...) through swift-subprocess.
enum Command {
    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        var succeeded: Bool { status == 0 }
    }

    /// Runs `executable` (a name looked up in PATH) and returns its output whatever its status.
    static func capture(_ executable: String, _ arguments: [String], input: String? = nil) async throws(LabError)
        -> Output
    {
        do {
            let result: ExecutionRecord
            if let input {
                result = try await ExecutionRecord(
                    Subprocess.run(
                        .name(executable), arguments: Arguments(arguments), environment: environment,
                        input: .string(input), output: .string(limit: 8 << 20), error: .string(limit: 8 << 20)))
            } else {
                result = try await ExecutionRecord(
                    Subprocess.run(
                        .name(executable), arguments: Arguments(arguments), environment: environment,
                        output: .string(limit: 8 << 20), error: .string(limit: 8 << 20)))
            }
            return Output(status: result.status, stdout: result.stdout, stderr: result.stderr)
        } catch {
            throw .commandFailed(
                command: commandLine(executable, arguments), status: "could not be started",
                output: String(describing: error))
        }
    }

    /// Runs `executable` and fails with its stderr unless it exits 0.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) async throws(LabError)
        -> String
    {
        let output = try await capture(executable, arguments, input: input)
        guard output.succeeded else {
            throw .commandFailed(
                command: commandLine(executable, arguments), status: "exited with status \(output.status)",
                output: output.stderr.isEmpty ? output.stdout : output.stderr)
        }
        return output.stdout
    }

    /// Runs a command and hands each line of its stdout and stderr (merged by the shell script
    /// itself) to `onLine` as it arrives; returns the status and the last lines for errors.
    static func stream(
        _ executable: String, _ arguments: [String], extraEnvironment: [String: String],
        onLine: @escaping @Sendable (String) -> Void
    ) async throws(LabError) -> (status: Int32, tail: [String]) {
        var env: [Environment.Key: String?] = [:]
        for (key, value) in extraEnvironment { env[Environment.Key(stringLiteral: key)] = value }
        do {
            let result = try await Subprocess.run(
                .name(executable), arguments: Arguments(arguments), environment: environment.updating(env),
                input: .none, output: .sequence, error: .discarded
            ) { execution in
                var tail: [String] = []
                for try await line in execution.standardOutput.strings() {
                    onLine(line)
                    tail.append(line)
                    if tail.count > 20 { tail.removeFirst() }
                }
                return tail
            }
            return (ExecutionRecord.code(result.terminationStatus), result.closureResult)
        } catch {
            throw .commandFailed(
                command: commandLine(executable, arguments), status: "could not be started",
                output: String(describing: error))
        }
    }

    /// Whether `name` is an executable in PATH (or an absolute path that is executable).
    static func exists(_ name: String) -> Bool {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) }
        return searchPath.contains { FileManager.default.isExecutableFile(atPath: $0 + "/" + name) }
    }

    /// sbin directories are added because `sudo` and cron often drop them, and ip, debootstrap
    /// and iptables live there.
    static let searchPath: [String] = {
        var dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        where !dirs.contains(dir) {
            dirs.append(dir)
        }
        return dirs
    }()

    static var environment: Environment {
        .inherit.updating([
            "PATH": searchPath.joined(separator: ":"), "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive",
        ])
    }

    static func commandLine(_ executable: String, _ arguments: [String]) -> String {
        ([executable] + arguments).map(ShellQuoting.quote).joined(separator: " ")
    }
}

/// The parts of a subprocess result the lab uses, taken out of the generic result type.
private struct ExecutionRecord {
    var status: Int32
    var stdout: String
    var stderr: String

    init(_ result: ExecutionResult<Void, StringOutput<Unicode.UTF8>, StringOutput<Unicode.UTF8>>) {
        status = Self.code(result.terminationStatus)
        stdout = result.standardOutput
        stderr = result.standardError
    }

    static func code(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}
