import Foundation

/// One run at a time on a host: two runs interleaving their probes and changes would each plan
/// on facts the other is changing. The lock is `flock` on `<stateDirectory>/lock`, taken in the
/// run's first probe (no round trip of its own) and then held by a small process in a session
/// of its own that lives exactly as long as the run's SSH session (it watches the session's
/// sshd process): released when labctl closes the session, and also when labctl is killed or
/// the connection drops, with nothing to clean up. The file says who holds it, for the message
/// the other run shows.
///
/// Where the lock cannot be taken (no flock or setsid on the host, no sshd above the probe,
/// a probe that does not run as root and so cannot write the state directory), the run goes on
/// without it: the lock guards against a mistake, it is no reason to refuse to work.
struct HostLock: Sendable {
    var stateDirectory: String
    /// nil: fail at once when another run holds the lock; else wait up to this many seconds.
    var wait: Int?
    /// Who this run is, written into the lock file.
    var holder: String
    let nonce = ProbeScript.makeNonce()

    var path: String { stateDirectory + "/lock" }

    /// A prefix for the first probe: takes the lock or prints the busy marker and exits.
    var script: String {
        let dir = Shell.quote(stateDirectory)
        let lock = Shell.quote(path)
        // The holder is one process that notices its session's end within 0.2 s (GNU tail's
        // --pid check; a sleep loop where tail has none), so back-to-back runs (provision, then
        // deploy) barely wait; the grace of ten seconds keeps them from tripping on it, also on a busy machine.
        let patience = max(10, wait ?? 0)
        return TiedToSession.ancestor + """
            if [ -n "$a" ] && command -v flock >/dev/null 2>&1 && command -v setsid >/dev/null 2>&1 \
            && mkdir -p -- \(dir) 2>/dev/null && true >>\(lock) 2>/dev/null; then
            exec 9>>\(lock)
            if ! flock -n 9 && ! flock -w \(patience) 9; then
            echo "@@\(nonce) busy $(base64 -w0 <\(lock))"
            exit 0
            fi
            printf '%s since %s\\n' \(Shell.quote(holder)) "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >\(lock)
            setsid sh -c 'tail -s 0.2 --pid="$1" -f /dev/null || while [ -d /proc/"$1" ]; do sleep 1; done' labctl-lock "$a" </dev/null >/dev/null 2>&1 &
            exec 9>&-
            fi

            """
    }

    /// The busy marker's text, when the probe found the lock held.
    func holderIfBusy(_ stdout: String) -> String? {
        let marker = "@@\(nonce) busy "
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix(marker) }) else { return nil }
        let encoded = String(line.dropFirst(marker.count))
        let text = Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "another labctl run" : trimmed
    }

    /// Who this labctl run is: its process, its machine, the playbook.
    static func describe(playbook: String) -> String {
        "labctl (pid \(getpid()) on \(ProcessInfo.processInfo.hostName)) running \((playbook as NSString).lastPathComponent)"
    }
}
