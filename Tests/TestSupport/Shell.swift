import Foundation

/// What a local command printed and how it ended.
public struct LocalResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var succeeded: Bool { status == 0 }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

public struct LocalCommandFailed: Error, CustomStringConvertible {
    public var command: [String]
    public var result: LocalResult
    public var description: String {
        "\(command.joined(separator: " ")) exited \(result.status): \(result.stderr)\(result.stdout)"
    }
}

/// Runs a program on this machine and waits for it (a test helper).
///
/// Written on posix_spawn and waitpid: Foundation's Process on Linux was seen to leave a finished
/// child unreaped (and waitUntilExit hanging) inside async tests.
@discardableResult
public func runLocal(
    _ arguments: [String], environment: [String: String]? = nil, stdin: String? = nil,
    check: Bool = true
) throws -> LocalResult {
    let folder = try TemporaryDirectory(prefix: "labctl-run")
    defer { folder.remove() }
    let inPath = folder.file("stdin"), outPath = folder.file("stdout"), errPath = folder.file("stderr")
    FileManager.default.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8))
    var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let env = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }.map { "\($0)=\($1)" }
    let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, envp)
    guard spawned == 0 else {
        throw LocalCommandFailed(command: arguments, result: LocalResult(status: -1, stdout: "", stderr: String(cString: strerror(spawned))))
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let result = LocalResult(
        status: exitCode,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    if check && !result.succeeded { throw LocalCommandFailed(command: arguments, result: result) }
    return result
}

/// Starts a program in the background with its output in `logPath`; returns its PID.
/// `environment` is added to this process's for the child only (tests run side by side in one
/// process, so a setenv here would reach the others' children).
public func spawnBackground(_ arguments: [String], logPath: String, environment: [String: String] = [:]) throws -> pid_t {
    var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0)=\($1)") } + [nil]
    defer { env.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, env)
    guard spawned == 0 else {
        throw LocalCommandFailed(command: arguments, result: LocalResult(status: -1, stdout: "", stderr: String(cString: strerror(spawned))))
    }
    return pid
}

/// Ends a background program started by `spawnBackground` and reaps it.
public func stopBackground(_ pid: pid_t) {
    guard kill(pid, SIGTERM) == 0 else { return }
    var status: Int32 = 0
    for _ in 0..<200 {
        if waitpid(pid, &status, WNOHANG) == pid { return }
        usleep(10_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
}

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(prefix: String = "labctl-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
        url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The labctl executable built beside the test bundle.
public var labctlExecutablePath: String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = bundle.deletingLastPathComponent()
    // `swift test` may run the bundle from inside a .xctest folder on some platforms.
    while folder.pathExtension == "xctest" { folder = folder.deletingLastPathComponent() }
    return folder.appendingPathComponent("labctl").path
}
