import Foundation
import SSH

/// `labctl ping` and `labctl exec`: one command on many hosts at once, outside any playbook.
public enum AdHoc {
    public struct PingResult: Sendable {
        public var host: String
        public var address: String
        public var system: String?
        public var loginUser: String?
        /// nil when the host does not use become; else whether `sudo -n true` worked.
        public var sudoWorks: Bool?
        public var connectTime: Duration?
        public var commandTime: Duration?
        public var error: SSHError?

        public var succeeded: Bool { error == nil && system != nil && sudoWorks != false }
    }

    public struct ExecResult: Sendable {
        public var host: String
        public var result: CommandResult?
        public var error: SSHError?

        public var succeeded: Bool { error == nil && result?.succeeded == true }
    }

    /// Connects to every target in parallel and asks each who and what it is, in one command.
    public static func ping(_ targets: [RunTarget], connector: @escaping HostConnector = PlaybookRunner.connectOverSSH)
        async -> [PingResult]
    {
        await forEachHost(targets) { target in
            var ping = PingResult(host: target.name, address: target.ssh.endpoint.host)
            let started = ContinuousClock.now
            let session: any HostSession
            do throws(SSHError) {
                session = try await connector(target)
            } catch {
                ping.error = error
                return ping
            }
            ping.connectTime = ContinuousClock.now - started
            var script = "uname -sr; id -un"
            if target.become != nil { script += "; if sudo -n true 2>/dev/null; then echo sudo-ok; else echo sudo-refused; fi" }
            do throws(SSHError) {
                let result = try await session.run(RemoteCommand(script, timeout: .seconds(30)), onLine: nil)
                ping.commandTime = result.duration
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                if result.succeeded, lines.count >= 2 {
                    ping.system = lines[0]
                    ping.loginUser = lines[1]
                    if target.become != nil { ping.sudoWorks = lines.count > 2 && lines[2] == "sudo-ok" }
                } else {
                    ping.error = SSHError(
                        host: target.name, operation: .exec,
                        kind: .commandFailed(status: result.exitStatus, signal: result.exitSignal, stderr: result.stderrText))
                }
            } catch {
                ping.error = error
            }
            await session.close()
            return ping
        }
    }

    /// Runs `command` on every target in parallel; `onLine` sees each output line with its host.
    public static func exec(
        _ targets: [RunTarget], command: String, become: Bool, timeout: Duration?,
        connector: @escaping HostConnector = PlaybookRunner.connectOverSSH,
        onLine: @escaping @Sendable (String, OutputLine) -> Void
    ) async -> [ExecResult] {
        await forEachHost(targets) { target in
            var outcome = ExecResult(host: target.name)
            do throws(SSHError) {
                let session = try await connector(target)
                let remote = RemoteCommand(command, timeout: timeout, become: become ? (target.become ?? .sudo) : nil)
                do throws(SSHError) {
                    outcome.result = try await session.run(remote) { line in onLine(target.name, line) }
                } catch {
                    outcome.error = error
                }
                await session.close()
            } catch {
                outcome.error = error
            }
            return outcome
        }
    }

    /// Every host at once, results in the targets' order.
    static func forEachHost<Result: Sendable>(
        _ targets: [RunTarget], _ body: @escaping @Sendable (RunTarget) async -> Result
    ) async -> [Result] {
        await withTaskGroup(of: (Int, Result).self) { group in
            for (index, target) in targets.enumerated() {
                group.addTask { (index, await body(target)) }
            }
            var results: [(Int, Result)] = []
            for await item in group { results.append(item) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
