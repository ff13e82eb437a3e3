import Foundation

/// Remote work that stops when labctl does. libssh2 1.10 cannot signal a remote process, and
/// sshd does not signal a command without a terminal when the connection ends, so a plan cut
/// off from labctl (SIGKILL, a second Ctrl-C, a dropped network) would run on: `apt-get
/// install` finishing unwatched, then the plan's fallback `apt-get update` starting with no one
/// to report to.
///
/// So the plan runs in a session of its own (`setsid`: its process group holds every process
/// it starts), with a watcher beside it that ends the group (TERM, then KILL 5 s later) once
/// the session's sshd process is gone or the script that started it is (killed by the
/// host-side timeout, whose own group kill cannot reach another session). On a host without
/// `setsid`, or with no sshd above the script (a local shell), the plan runs as before.
enum TiedToSession {
    /// Shell text that runs `plan` (a script) tied to the session and leaves its status in `$s`.
    /// (The group ids given to `kill` are the shell's own numbers, never user data: dash's kill
    /// takes no `--`, and a negative number after the signal is a group there.)
    static func run(_ plan: String) -> String {
        let watched = """
            ( trap '' TERM
              while sleep 1; do
                { [ -z "$1" ] || kill -0 "$1"; } && kill -0 "$2" || { kill -TERM "-$$"; sleep 5; kill -KILL "-$$"; exit 0; }
              done ) </dev/null >/dev/null 2>&1 &
            w=$!
            ( \(plan.hasSuffix("\n") ? plan : plan + "\n")) 3<&-
            s=$?
            kill "$w" 2>/dev/null
            exit "$s"
            """
        return ancestor + """
            if [ -n "$a" ] && command -v setsid >/dev/null 2>&1; then
            exec 3<&0
            setsid sh -c \(Shell.quote(watched)) labctl-step "$a" "$$" <&3 &
            wait "$!"
            s=$?
            exec 3<&-
            else
            (
            \(plan))
            s=$?
            fi

            """
    }

    /// Sets `$a` to the sshd process serving this session (empty when there is none): the
    /// nearest ancestor whose name starts with sshd (sshd, or sshd-session since OpenSSH 9.8),
    /// above the login shell, sudo and timeout; found with the shell's own `read`, no helper
    /// process.
    static let ancestor = """
        a=$PPID
        while [ "$a" -gt 1 ] 2>/dev/null; do
          read -r c </proc/"$a"/comm 2>/dev/null || { a=; break; }
          case "$c" in sshd*) break;; esac
          p=
          while read -r k v; do [ "$k" != PPid: ] || { p=$v; break; }; done </proc/"$a"/status 2>/dev/null
          a=$p
        done
        [ "${a:-0}" -gt 1 ] 2>/dev/null || a=

        """
}
