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
        /// The host key recorded on this first contact (accept-new).
        public var recordedHostKey: String?

        public var succeeded: Bool { error == nil && system != nil && sudoWorks != false }
    }

    public struct ExecResult: Sendable {
        public var host: String
        public var result: CommandResult?
        public var error: SSHError?

        public var succeeded: Bool { error == nil && result?.succeeded == true }
    }

    /// Connects to every target in parallel and asks each who and what it is, in one command.
    public static func ping(_ targets: [RunTarget], forks: Int = 50, connector: @escaping HostConnector = PlaybookRunner.connectOverSSH)
        async -> [PingResult]
    {
        await forEachHost(targets, forks: forks) { target in
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
            ping.recordedHostKey = session.recordedHostKey
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
        _ targets: [RunTarget], command: String, become: Bool, timeout: Duration?, forks: Int = 50,
        connector: @escaping HostConnector = PlaybookRunner.connectOverSSH,
        onLine: @escaping @Sendable (String, OutputLine) -> Void
    ) async -> [ExecResult] {
        await forEachHost(targets, forks: forks) { target in
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

    public struct KeyInstallResult: Sendable {
        public enum Outcome: Sendable, Equatable {
            /// The key logged in already: nothing was changed.
            case alreadyWorks
            /// Appended to authorized_keys over a password login, and key login proven after.
            case installed
            /// authorized_keys listed it already, yet the password was needed; key login works now.
            case wasListed
        }

        public var host: String
        public var address: String
        public var outcome: Outcome?
        public var error: SSHError?
        /// Why the result is a failure, when it is not the connection's own error.
        public var problem: String?

        public var succeeded: Bool { outcome != nil && error == nil && problem == nil }
        /// The key did not log in and no password was given to install it with.
        public var needsPassword = false
    }

    /// What ssh-copy-id does, for each target: when the key (`keyPath`, its public half
    /// `publicKey`) does not log in yet, logs in once with `password`, appends the key to the login
    /// user's ~/.ssh/authorized_keys (made 700/600, owned by that user since it runs as them, the
    /// key not listed twice), then proves that key login works.
    public static func installKey(
        _ targets: [RunTarget], keyPath: String, publicKey: String, password: String?,
        connector: @escaping HostConnector = PlaybookRunner.connectOverSSH
    ) async -> [KeyInstallResult] {
        await forEachHost(targets) { target in
            var outcome = KeyInstallResult(host: target.name, address: target.ssh.endpoint.host)
            var keyOnly = target
            let passphrase = target.ssh.credentials.lazy.compactMap { credential -> String? in
                if case .keyFile(_, let passphrase) = credential { return passphrase }
                return nil
            }.first
            keyOnly.ssh.credentials = [.keyFile(path: keyPath, passphrase: passphrase)]
            switch await proveKeyLogin(keyOnly, connector: connector) {
            case .success:
                outcome.outcome = .alreadyWorks
                return outcome
            case .failure(let error):
                guard case .authenticationFailed = error.kind else {
                    outcome.error = error
                    return outcome
                }
            }
            guard let password else {
                outcome.needsPassword = true
                outcome.problem = "the key does not log in yet and no password was given: run again with -k (or set LABCTL_SSH_PASSWORD) to log in once with the password"
                return outcome
            }
            var withPassword = target
            withPassword.ssh.credentials = [.password(password)]
            do throws(SSHError) {
                let session = try await connector(withPassword)
                let result: CommandResult
                do throws(SSHError) {
                    result = try await session.run(
                        RemoteCommand(arguments: ["sh", "-c", Self.authorizeKeyScript], stdin: Array((publicKey + "\n").utf8), timeout: .seconds(30)),
                        onLine: nil)
                } catch {
                    await session.close()
                    throw error
                }
                await session.close()
                guard result.succeeded else {
                    outcome.problem = "adding the key to ~/.ssh/authorized_keys failed: " + Self.lastLine(result.stderrText)
                    return outcome
                }
                let listed = result.stdoutText.contains("present")
                switch await proveKeyLogin(keyOnly, connector: connector) {
                case .success:
                    outcome.outcome = listed ? .wasListed : .installed
                case .failure(let error):
                    outcome.outcome = listed ? .wasListed : .installed
                    outcome.problem = "the key is in ~/.ssh/authorized_keys now, but the server still refuses it (\(error.summary)); "
                        + "its sshd may read keys from elsewhere (AuthorizedKeysFile) or refuse this key type"
                }
            } catch {
                outcome.error = error
            }
            return outcome
        }
    }

    /// Runs as the login user, the public key on stdin: its type and base64 decide whether it is
    /// listed already (comments and options aside).
    static let authorizeKeyScript = #"""
        set -ef
        key=$(head -n 1)
        set -- $key
        [ $# -ge 2 ] || { echo "the public key is not one line of 'type base64 comment'" >&2; exit 1; }
        umask 077
        mkdir -p -- "$HOME/.ssh"
        chmod 700 -- "$HOME/.ssh"
        f=$HOME/.ssh/authorized_keys
        [ -e "$f" ] || : > "$f"
        chmod 600 -- "$f"
        if awk -v t="$1" -v b="$2" '{ for (i = 1; i < NF; i++) if ($i == t && $(i + 1) == b) found = 1 } END { exit !found }' "$f"; then
            echo present
        else
            if [ -s "$f" ] && [ -n "$(tail -c 1 -- "$f")" ]; then echo >> "$f"; fi
            printf '%s\n' "$key" >> "$f"
            echo added
        fi
        if command -v restorecon >/dev/null 2>&1; then restorecon -R -- "$HOME/.ssh" >/dev/null 2>&1 || true; fi
        """#

    static func proveKeyLogin(_ target: RunTarget, connector: HostConnector) async -> Result<Void, SSHError> {
        do throws(SSHError) {
            let session = try await connector(target)
            defer { Task { await session.close() } }
            let result = try await session.run(RemoteCommand("true", timeout: .seconds(30)), onLine: nil)
            if !result.succeeded {
                return .failure(SSHError(host: target.name, operation: .exec, kind: .commandFailed(status: result.exitStatus, signal: result.exitSignal, stderr: result.stderrText)))
            }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    static func lastLine(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? "no error output"
    }

    /// Up to `forks` hosts at once, results in the targets' order.
    static func forEachHost<Result: Sendable>(
        _ targets: [RunTarget], forks: Int = 50, _ body: @escaping @Sendable (RunTarget) async -> Result
    ) async -> [Result] {
        await withTaskGroup(of: (Int, Result).self) { group in
            var results: [(Int, Result)] = []
            for (index, target) in targets.enumerated() {
                if index >= max(1, forks), let item = await group.next() { results.append(item) }
                group.addTask { (index, await body(target)) }
            }
            for await item in group { results.append(item) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
