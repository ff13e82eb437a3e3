import Foundation
import LabSpec

/// `package`: Debian packages installed (or removed) with apt.
public struct PackageOperation: StepOperation {
    public var names: [String]
    public var state: PresenceState
    public var cacheValidTime: Int?

    public init(names: [String], state: PresenceState = .present, cacheValidTime: Int? = nil) {
        self.names = names
        self.state = state
        self.cacheValidTime = cacheValidTime
    }

    /// Per package: installed (dpkg status) and, only for one that is not, the install
    /// candidate; for the index, only when something is missing: the age in seconds of the
    /// newest list apt fetched (none when it never ran `apt-get update`). A plan with nothing
    /// missing never reads those facts, and `apt-cache policy` alone costs a host some 40 ms,
    /// so a run with everything installed asks dpkg and nothing else.
    public var probe: String {
        var lines = ["command -v apt-get >/dev/null || { echo apt=missing; exit 0; }", "m="]
        for (index, name) in names.enumerated() {
            let q = Shell.quote(name)
            var missing = "echo installed.\(index)=no"
            if state == .present {
                missing += #"; m=1; echo "candidate.\#(index)=$(apt-cache policy "# + q + #" 2>/dev/null | sed -n 's/^ *Candidate: *//p')""#
            }
            // Only "ok installed" is present: a package whose install was cut (unpacked,
            // half-configured, a reinstall required) is on disk but not usable, and is what a
            // Ctrl-C during apt leaves behind.
            lines.append(
                #"s=$(dpkg-query -W -f='${Status}' -- "# + q + #" 2>/dev/null); case "$s" in *" ok installed") echo installed.\#(index)=yes;; "#
                    + #"*" reinstreq "*|*" half-installed"|*" unpacked"|*" half-configured"|*" triggers-awaited"|*" triggers-pending") echo partial.\#(index)=1; "#
                    + missing + ";; *) " + missing + ";; esac")
        }
        if state == .present {
            lines.append(#"[ -n "$m" ] || exit 0"#)
            lines.append(#"n=$(ls -t /var/lib/apt/lists/ 2>/dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$' | head -n 1)"#)
            lines.append(#"if [ -n "$n" ]; then echo "lists.age=$(( $(date +%s) - $(stat -c %Y "/var/lib/apt/lists/$n") ))"; else echo lists.age=none; fi"#)
        }
        return lines.joined(separator: "\n")
    }

    /// apt waits for the dpkg lock itself (DPkg::Lock::Timeout, apt 1.9.11 and later), which
    /// is what an unattended-upgrades run at boot needs.
    static let apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600"

    /// `apt-get update` takes the lists lock, which apt-daily holds on a freshly booted VM for
    /// minutes; DPkg::Lock::Timeout does not cover it everywhere, so a lock error is retried
    /// (for up to 10 minutes) and any other error fails at once with apt's own words.
    static let update = #"n=0; until out=$(\#(apt) update 2>&1); do case "$out" in *lock*) n=$((n+1)); [ "$n" -lt 200 ] || { printf '%s\n' "$out" >&2; exit 1; }; sleep 3;; *) printf '%s\n' "$out" >&2; exit 1;; esac; done"#

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        if facts["apt"] == "missing" { throw StepFailure("the host has no apt-get; package steps need a Debian or Ubuntu host") }
        let installed = names.indices.map { facts["installed.\($0)"] == "yes" }
        let partial = names.indices.filter { facts["partial.\($0)"] == "1" }
        // dpkg refuses to work on (apt: "dpkg was interrupted") until the cut install is finished.
        let finish = partial.isEmpty ? [] : ["DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a"]
        let finishSummary = partial.isEmpty ? [] : ["finish the interrupted install of \(partial.map { names[$0] }.joined(separator: ", "))"]
        if state == .absent {
            let remove = names.indices.filter { installed[$0] || partial.contains($0) }.map { names[$0] }
            guard !remove.isEmpty else { return .unchanged }
            return StepPlan(commands: finish + ["\(Self.apt) remove \(Shell.join(remove))"], summary: finishSummary + ["remove \(remove.joined(separator: ", "))"])
        }
        let missing = names.indices.filter { !installed[$0] }
        guard !missing.isEmpty else { return .unchanged }
        // Refresh the index only when it cannot serve the install: never fetched, a wanted
        // package unknown to it, or older than cache_valid_time when that is set.
        let age = facts["lists.age"].flatMap { Int($0) }
        let noCandidate = missing.contains { ["", "(none)"].contains(facts["candidate.\($0)"] ?? "") }
        let stale = cacheValidTime.map { limit in age.map { $0 > limit } ?? true } ?? false
        var commands: [String] = []
        let wanted = missing.map { names[$0] }
        let install = "\(Self.apt) install --no-install-recommends \(Shell.join(wanted))"
        if age == nil || noCandidate || stale {
            commands += [Self.update, install]
        } else {
            // An index that knows the package can still be too old for the mirror (a VM image
            // built months ago: 404 on download): then refresh it once and try again.
            commands.append("\(install) || { \(Self.update) && \(install); }")
        }
        return StepPlan(commands: finish + commands, summary: finishSummary + ["install \(wanted.joined(separator: ", "))"])
    }
}

/// `service`: a systemd unit enabled or not, started, stopped, restarted or reloaded.
public struct ServiceOperation: StepOperation {
    public var name: String
    public var enabled: Bool?
    public var state: ServiceState?
    public var daemonReload: Bool

    public init(name: String, enabled: Bool? = nil, state: ServiceState? = nil, daemonReload: Bool = false) {
        self.name = name
        self.enabled = enabled
        self.state = state
        self.daemonReload = daemonReload
    }

    /// One `systemctl show` for every fact instead of a systemctl per fact (each costs the
    /// host a process and a D-Bus round trip). Its UnitFileState is the `is-enabled` answer
    /// except for an alias name (sshd for ssh.service): show reports the unit the alias points
    /// to, is-enabled says "alias"; so when the unit's Id is not the name asked for, the plan
    /// keeps getting is-enabled's word, from one more call in that case only.
    public var probe: String {
        let q = Shell.quote(name)
        return """
            if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null; then echo systemd=no; exit 0; fi
            echo systemd=yes
            systemctl show -p Id,LoadState,UnitFileState,ActiveState,SubState,Type,NeedDaemonReload -- \(q) | {
            id=; e=
            while IFS= read -r l; do case "$l" in
            Id=*) id=${l#*=};;
            LoadState=*) echo "load=${l#*=}";;
            UnitFileState=*) e=${l#*=};;
            ActiveState=*) echo "active=${l#*=}";;
            SubState=*) echo "sub=${l#*=}";;
            Type=*) echo "type=${l#*=}";;
            NeedDaemonReload=*) echo "reload=${l#*=}";;
            esac; done
            case "$id" in \(q)|\(q).service) ;; *) e=$(systemctl is-enabled -- \(q) 2>/dev/null);; esac
            echo "enabled=$e"
            }
            """
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        guard facts["systemd"] == "yes" else {
            throw StepFailure("the host does not run systemd (no /run/systemd/system), so the unit \(name) cannot be managed; service steps need a systemd host")
        }
        let q = Shell.quote(name)
        var commands: [String] = []
        var summary: [String] = []
        // A unit systemd does not know yet may have just been written (a file step before
        // this one): daemon_reload makes systemd read it before anything else.
        if daemonReload, facts["reload"] == "yes" || facts["load"] == "not-found" {
            commands.append("systemctl daemon-reload")
            summary.append("reload systemd's unit files")
        }
        // A unit file written earlier in the same run is known to systemd only after
        // daemon-reload, so "not-found" is judged after it.
        if facts["load"] == "not-found", !daemonReload {
            throw StepFailure("systemd has no unit named \(name) on this host")
        }
        let enabledNow = facts["enabled"] ?? ""
        if let enabled {
            if enabled, !["enabled", "enabled-runtime", "static", "alias", "indirect", "generated"].contains(enabledNow) {
                commands.append("systemctl enable -- \(q)")
                summary.append("enable \(name)")
            } else if !enabled, enabledNow == "enabled" || enabledNow == "enabled-runtime" {
                commands.append("systemctl disable -- \(q)")
                summary.append("disable \(name)")
            }
        }
        let active = facts["active"] ?? ""
        // A unit waiting to be restarted after its process died is crash-looping, not
        // running: `started` starts it (systemd does so at once) and then sees it fail.
        let crashLooping = active == "activating" && facts["sub"] == "auto-restart"
        let running = ["active", "activating", "reloading", "deactivating"].contains(active) && !crashLooping
        // A oneshot unit's start returns when its work is done: there is nothing to watch.
        let watch = facts["type"] != "oneshot"
        switch state {
        case .started where !running:
            commands.append("systemctl start -- \(q)"); summary.append("start \(name)")
            if watch { commands.append(staysRunning) }
        case .stopped where running || crashLooping:
            commands.append("systemctl stop -- \(q)"); summary.append("stop \(name)")
        case .restarted:
            commands.append("systemctl restart -- \(q)"); summary.append("restart \(name)")
            if watch { commands.append(staysRunning) }
        case .reloaded:
            // Reloading a stopped unit fails; Ansible starts it instead, and so do we.
            commands.append(running ? "systemctl reload -- \(q)" : "systemctl start -- \(q)")
            summary.append(running ? "reload \(name)" : "start \(name)")
            if !running, watch { commands.append(staysRunning) }
        default:
            break
        }
        return commands.isEmpty ? .unchanged : StepPlan(commands: commands, summary: summary)
    }

    /// How long a started unit must keep one main process, with no automatic restart, before
    /// the start counts: `systemctl start` returns once a simple service's process is forked,
    /// before the program has even tried to listen. An app that dies at start (its port
    /// taken, a file missing) does so inside this window; one that dies later is caught by
    /// the `wait_for` with `unit` that follows the start in deploy.yml.
    public static let settleSeconds = 2

    /// After a start: the unit stays active with the same main process for `settleSeconds`
    /// and systemd restarts it not once, or the step fails saying what systemd saw. Without
    /// this a crash-looping unit (Restart=on-failure) passes for started.
    var staysRunning: String {
        let q = Shell.quote(name)
        return """
            labctl_unit_state() {
            a=; s=; n=; p=; r=; c=
            while IFS= read -r l; do case "$l" in
            ActiveState=*) a=${l#*=};; SubState=*) s=${l#*=};; NRestarts=*) n=${l#*=};;
            MainPID=*) p=${l#*=};; Result=*) r=${l#*=};; ExecMainStatus=*) c=${l#*=};;
            esac; done <<LABCTL_UNIT
            $(systemctl show -p ActiveState,SubState,NRestarts,MainPID,Result,ExecMainStatus -- \(q))
            LABCTL_UNIT
            }
            # The unit's own last words, for the failure message: why it would not stay up.
            labctl_unit_log() { journalctl -u \(q) -n 4 --no-pager -o cat 2>/dev/null | cut -c1-200 >&2 || true; }
            labctl_unit_state; n0=${n:-0}; pid0=; stable=0; i=0
            while :; do
            labctl_unit_state
            if [ "${n:-0}" -gt "$n0" ] || [ "$s" = auto-restart ] || [ "$a" = failed ]; then
            labctl_unit_log
            echo \(q)" did not stay running: its process exited (status ${c:-?}, ${r:-?}) and systemd is restarting it; its last log lines are above (journalctl -u "\(q)" for more)" >&2; exit 1
            fi
            case "$a" in
            active|reloading) if [ "$p" = "$pid0" ]; then stable=$((stable + 1)); else pid0=$p; stable=0; fi
            [ "$stable" -ge \(Self.settleSeconds * 4) ] && break;;
            inactive|deactivating) labctl_unit_log; echo \(q)" stopped right after it started (status ${c:-?}, ${r:-?}); its last log lines are above (journalctl -u "\(q)" for more)" >&2; exit 1;;
            esac
            i=$((i + 1))
            if [ "$i" -ge 240 ]; then echo \(q)" was still $a ($s) 60 s after it was started" >&2; exit 1; fi
            sleep 0.25
            done
            """
    }
}

/// `command`: a shell command, skipped when `creates` exists or `unless` succeeds.
public struct CommandOperation: StepOperation {
    public var applyTimeout: Duration? { timeout.map(Self.applyLimit(seconds:)) }

    public var run: String
    public var creates: String?
    public var unless: String?
    public var chdir: String?
    public var timeout: Int?
    public var user: String?
    public var env: [String: String]

    public init(
        run: String, creates: String? = nil, unless: String? = nil, chdir: String? = nil, timeout: Int? = nil,
        user: String? = nil, env: [String: String] = [:]
    ) {
        self.run = run
        self.creates = creates
        self.unless = unless
        self.chdir = chdir
        self.timeout = timeout
        self.user = user
        self.env = env
    }

    /// `script` as its own sh, in `chdir`, with `env`, as `user`. The user's command runs in a
    /// shell of its own so that the `set -e` of the apply script does not change its meaning.
    func invocation(_ script: String) -> String {
        var inner = env.keys.sorted().map { "export \($0)=\(Shell.quote(env[$0]!))\n" }.joined()
        if let chdir { inner += "cd \(Shell.quote(chdir)) || exit\n" }
        inner += script
        // `--` before the user: a name is never read as one of su's options.
        if let user { return "su -s /bin/sh -l -c \(Shell.quote(inner)) -- \(Shell.quote(user))" }
        return "sh -c \(Shell.quote(inner))"
    }

    /// `unless` runs during the probe, like Ansible's and pyinfra's guards: it must only look.
    public var probe: String {
        var lines: [String] = []
        if let creates { lines.append("if [ -e \(Shell.quote(creates)) ]; then echo creates=yes; else echo creates=no; fi") }
        if let unless {
            lines.append("if \(invocation(unless)) >/dev/null 2>&1; then echo unless=ok; else echo unless=failed; fi")
        }
        return lines.isEmpty ? ":" : lines.joined(separator: "\n")
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        if creates != nil, facts["creates"] == "yes" { return .unchanged }
        if unless != nil, facts["unless"] == "ok" { return .unchanged }
        let command = timeout.map { "timeout \($0) " + invocation(run) } ?? invocation(run)
        return StepPlan(commands: [command], summary: ["run: \(run)"], capturesOutput: true)
    }
}

/// `git`: a clone of `repo` in `dest`, checked out at `ref`.
public struct GitOperation: StepOperation {
    public var repo: String
    public var dest: String
    public var ref: String

    public init(repo: String, dest: String, ref: String = "HEAD") {
        self.repo = repo
        self.dest = dest
        self.ref = ref
    }

    var refIsCommit: Bool { ref.count == 40 && ref.allSatisfy(\.isHexDigit) }

    /// git in the clone. The clone usually ends up owned by the app's user while labctl works
    /// as root, and git (2.35.2 and later) refuses a repository another user owns ("dubious
    /// ownership"); trusting this one directory on the command line, which git honours as
    /// protected configuration, keeps the check for every other repository.
    var git: String { "git -c safe.directory=\(Shell.quote(dest)) -C \(Shell.quote(dest))" }

    public var probe: String {
        let d = Shell.quote(dest)
        var lines = [
            "command -v git >/dev/null || { echo git=missing; exit 0; }",
            "if [ -d \(d)/.git ]; then echo \"head=$(\(git) rev-parse HEAD 2>/dev/null)\"",
            "elif [ -e \(d) ] && [ -n \"$(ls -A \(d) 2>/dev/null)\" ]; then echo dest=occupied; fi",
        ]
        if refIsCommit {
            lines.append("echo target=\(ref)")
        } else {
            // A tag's own object is not a commit: prefer its peeled line (`^{}`) when there is one.
            let patterns = Shell.join([ref, ref + "^{}"])
            lines.append(
                #"if out=$(timeout 60 git ls-remote -- "# + Shell.quote(repo) + " " + patterns + #" 2>&1); then echo "target=$(printf '%s\n' "$out" | awk '$2 ~ /\^\{\}$/ { p = $1 } f == "" { f = $1 } END { print (p != "" ? p : f) }')"; else echo "status=$?"; echo "error.b64=$(printf '%s' "$out" | base64 | tr -d '\n')"; fi"#)
        }
        return lines.joined(separator: "\n")
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        if facts["git"] == "missing" { throw StepFailure("git is not installed on the host; add a package step for git before this one") }
        if let error = facts.text("error") {
            var why = error.trimmingCharacters(in: .whitespacesAndNewlines)
            if why.isEmpty {
                why = facts["status"] == "124"
                    ? "git ls-remote had no answer within 60 s (is the server up, and reachable from the host?)"
                    : "git ls-remote failed without a message (exit status \(facts["status"] ?? "unknown"))"
            }
            throw StepFailure("cannot read \(repo) from the host: \(why)")
        }
        guard let target = facts["target"], !target.isEmpty else {
            throw StepFailure("\(repo) has no branch or tag named \(ref)")
        }
        // The commit id comes from the remote's answer: only an object name goes on a command line.
        guard [40, 64].contains(target.count), target.allSatisfy(\.isHexDigit) else {
            throw StepFailure("\(repo) answered \(ref) with \(ValueForm.shown(target)), which is not a commit id")
        }
        let d = Shell.quote(dest)
        let checkout = "\(git) checkout --quiet --force --detach \(Shell.quote(target)) --"
        if let head = facts["head"], !head.isEmpty {
            if head == target { return .unchanged }
            // Fetch from the URL given, not from whatever origin says, so that a changed repo
            // argument is honoured.
            return StepPlan(
                commands: [
                    "\(git) fetch --quiet -- \(Shell.quote(repo)) '+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*'",
                    checkout,
                ],
                summary: ["move \(dest) from \(head.prefix(12)) to \(target.prefix(12))"])
        }
        if facts["dest"] == "occupied" { throw StepFailure("\(dest) exists, is not empty and is not a git clone") }
        return StepPlan(
            commands: ["git clone --quiet --no-checkout -- \(Shell.quote(repo)) \(d)", checkout],
            summary: ["clone \(repo) at \(target.prefix(12)) into \(dest)"])
    }
}

/// `upload`: a local directory's files copied to the host, as one tar stream on stdin,
/// only when the content differs (a digest of every file's path and sha256).
public struct UploadOperation: StepOperation {
    public var source: LocalTree
    public var dest: String
    public var owner: String?
    public var group: String?
    public var keep: [String]

    public init(source: LocalTree, dest: String, owner: String? = nil, group: String? = nil, keep: [String] = []) {
        self.source = source
        self.dest = dest
        self.owner = owner
        self.group = group
        self.keep = keep
    }

    public var probe: String {
        let d = Shell.quote(dest)
        return "if [ -d \(d) ]; then echo \"digest=$(cd \(d) && \(LocalTree.remoteDigestPipeline(excluding: keep)))\"; elif [ -e \(d) ]; then echo digest=notdir; else echo digest=none; fi"
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        if facts["digest"] == "notdir" { throw StepFailure("\(dest) exists and is not a directory") }
        if facts["digest"] == source.digest(excluding: keep) { return .unchanged }
        // Unpack beside the target, then swap: the directory is never half old, half new.
        let d = Shell.quote(dest)
        let new = Shell.quote(dest + ".labctl-new")
        let old = Shell.quote(dest + ".labctl-old")
        // Whatever stops the commands half-way (a full disk, a failed chown), the EXIT trap
        // leaves `dest` as it was: the old copy back in place, what `keep` moved returned to
        // it, the half-unpacked copy gone.
        let giveBack = keep.map { name in
            let staged = Shell.quote(dest + ".labctl-new/" + name)
            return "if [ -e \(staged) ] && [ -d \(d) ] && [ ! -e \(Shell.quote(dest + "/" + name)) ]; then mv -- \(staged) \(d)/; fi; "
        }.joined()
        let restore = "if [ ! -e \(d) ] && [ -e \(old) ]; then mv -- \(old) \(d); fi; " + giveBack + "rm -rf -- \(new)"
        var commands = [
            "rm -rf -- \(new) \(old)",
            "trap \(Shell.quote(restore)) EXIT",
            "mkdir -p -- \(new)",
            "tar -x -f - -C \(new) --no-same-owner",
        ]
        if owner != nil || group != nil {
            commands.append("chown -R -- \(Shell.quote((owner ?? "") + (group.map { ":" + $0 } ?? ""))) \(new)")
        }
        for name in keep {
            let kept = Shell.quote(dest + "/" + name)
            commands.append("if [ -e \(kept) ] && [ ! -e \(Shell.quote(dest + ".labctl-new/" + name)) ]; then mv -- \(kept) \(new)/; fi")
        }
        commands += [
            "if [ -e \(d) ]; then mv -- \(d) \(old); fi",
            "mv -- \(new) \(d)",
            "rm -rf -- \(old)",
        ]
        return StepPlan(
            commands: commands, stdin: source.tar,
            summary: ["copy \(source.fileCount) files to \(dest)"])
    }
}

/// `wait_for`: until a TCP port or a URL answers on the host, or the timeout passes.
public struct WaitForOperation: StepOperation {
    public var applyTimeout: Duration? { Self.applyLimit(seconds: timeout) }

    public var port: Int?
    public var host: String
    public var url: String?
    /// The systemd unit whose processes must hold the port that answers.
    public var unit: String?
    public var timeout: Int

    public init(port: Int? = nil, host: String = "127.0.0.1", url: String? = nil, unit: String? = nil, timeout: Int = 60) {
        self.port = port
        self.host = host
        self.url = url
        self.unit = unit
        self.timeout = timeout
    }

    /// The TCP port that answers: `port`, or the URL's (its scheme's default when it names none).
    var listeningPort: Int {
        if let port { return port }
        guard let url, let parts = URLComponents(string: url) else { return 0 }
        return parts.port ?? (parts.scheme?.lowercased() == "https" ? 443 : 80)
    }

    /// Shell functions for `unit`: `labctl_owned` succeeds when a listening socket on the port
    /// belongs to a process in the unit's control group, `labctl_holder` names who holds it.
    /// The kernel's socket tables and the processes' descriptors are read directly (minimal
    /// images have no ss); another user's descriptors need root, so the step asks for it.
    var ownership: String {
        guard let unit else { return "" }
        let q = Shell.quote(unit)
        let port = String(format: "%04X", listeningPort)
        return """
            labctl_listeners() {
            awk -v p=":\(port)" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
            }
            labctl_holds() { for i in $(labctl_listeners); do ls -l "/proc/$1/fd" 2>/dev/null | grep -qF "socket:[$i]" && return 0; done; return 1; }
            labctl_owned() {
            cg=$(systemctl show -p ControlGroup --value -- \(q) 2>/dev/null)
            [ -n "$cg" ] || return 1
            for f in "/sys/fs/cgroup$cg/cgroup.procs" "/sys/fs/cgroup/systemd$cg/cgroup.procs" "/sys/fs/cgroup/unified$cg/cgroup.procs"; do
            [ -r "$f" ] || continue
            for pid in $(cat -- "$f"); do labctl_holds "$pid" && return 0; done
            return 1
            done
            return 1
            }
            labctl_holder() {
            for d in /proc/[0-9]*; do labctl_holds "${d#/proc/}" && { echo "pid ${d#/proc/} ($(cat "$d/comm" 2>/dev/null))"; return; }; done
            echo "a process labctl cannot see"
            }

            """
    }

    /// One attempt. dash has no /dev/tcp, so ports are tried with bash, which every Debian
    /// host has; URLs with curl, or wget when curl is missing. HTTP errors (a 502 from a
    /// proxy whose backend is down) do not count as answering.
    var check: String {
        if let url {
            let u = Shell.quote(url)
            return "{ if command -v curl >/dev/null; then curl -fsS -o /dev/null --max-time 3 -- \(u); else wget -q -O /dev/null -T 3 -- \(u); fi; } >/dev/null 2>&1"
        }
        // The host and port are bash's arguments, not part of its script.
        return "timeout 3 bash -c '</dev/tcp/$1/$2' bash \(Shell.quote(host)) \(port ?? 0) >/dev/null 2>&1"
    }

    var what: String { url ?? "\(host):\(port ?? 0)" }

    public var probe: String {
        guard unit != nil else { return "if \(check); then echo up=yes; else echo up=no; fi" }
        return ownership + "if \(check) && labctl_owned; then echo up=yes; else echo up=no; fi"
    }

    public func plan(_ facts: Facts) throws(StepFailure) -> StepPlan {
        if facts["up"] == "yes" { return .unchanged }
        guard let unit else {
            let loop = """
                end=$(( $(date +%s) + \(timeout) )); until \(check); do if [ "$(date +%s)" -ge "$end" ]; then echo \(Shell.quote("\(what) did not answer within \(timeout) s")) >&2; exit 1; fi; sleep 1; done
                """
            return StepPlan(commands: [loop], changes: false, summary: ["wait for \(what)"])
        }
        let q = Shell.quote(unit)
        // A unit that failed for good will not answer: said at once, not at the timeout.
        // What answers for someone else is waited out (an old process may still be letting go
        // of the port) and named if it never does.
        let loop = ownership + """
            if [ "$(id -u)" -ne 0 ]; then echo \(Shell.quote("wait_for cannot see which process holds port \(listeningPort) without root: give the step become: true")) >&2; exit 1; fi
            end=$(( $(date +%s) + \(timeout) )); answered=
            while :; do
            if \(check); then labctl_owned && break; answered=yes; fi
            a=$(systemctl show -p ActiveState --value -- \(q) 2>/dev/null) || a=unknown
            if [ "$a" = failed ]; then echo \(q)" failed, so nothing of it answers at "\(Shell.quote(what))"; journalctl -u "\(q)" says why" >&2; exit 1; fi
            if [ "$(date +%s)" -ge "$end" ]; then
            n=$(systemctl show -p NRestarts --value -- \(q) 2>/dev/null) || n=0
            if [ "${n:-0}" -gt 0 ]; then a="$a, restarted $n times by systemd"; fi
            if [ -n "$answered" ]; then echo \(Shell.quote(what))" answers, but port \(listeningPort) is held by $(labctl_holder), not by "\(q)" ($a)" >&2
            else echo \(Shell.quote("\(what) did not answer within \(timeout) s"))" ("\(q)" is $a)" >&2; fi
            exit 1
            fi
            sleep 1
            done
            """
        return StepPlan(commands: [loop], changes: false, summary: ["wait for \(what) from \(unit)"])
    }
}
