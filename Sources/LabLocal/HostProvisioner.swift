import Foundation

/// Prepares one host's filesystem and boots it.
struct HostProvisioner: Sendable {
    var host: ValidatedHost
    var state: HostState
    var basePath: String
    var allHosts: [ValidatedHost]
    var loginKey: String

    static let supervisorMarker = "labctl-supervisor"

    private var root: String { state.merged }

    /// Mounts the overlay and writes what makes this host itself: hostname, machine-id, its
    /// ed25519 host key (made here: generating keys at boot costs seconds), /etc/hosts, the
    /// login user with the lab's key. A host started again on its kept disk keeps all of it
    /// (playbooks may have edited /etc/hosts); only its login is brought up to date.
    func prepareFilesystem() async throws(LabError) {
        for dir in [state.upper, state.work, state.merged] { try Machine.makeDirectory(dir) }
        try Machine.mountOverlay(lower: basePath, upper: state.upper, work: state.work, at: state.merged)
        let keyPath = root + "/etc/ssh/ssh_host_ed25519_key"
        if !FileManager.default.fileExists(atPath: keyPath) {
            try Machine.write(host.name + "\n", to: root + "/etc/hostname")
            var hosts = "127.0.0.1\tlocalhost\n127.0.1.1\t\(host.name)\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            for other in allHosts { hosts += "\(other.address)\t\(other.name)\n" }
            try Machine.write(hosts, to: root + "/etc/hosts")
            try Machine.write(Self.randomMachineID() + "\n", to: root + "/etc/machine-id", mode: 0o444)
            try await Command.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "root@\(host.name)", "-f", keyPath])
        }
        try await createLogin()
    }

    private func createLogin() async throws(LabError) {
        let user = host.definition.user
        if user == "root" {
            try Machine.makeDirectory(root + "/root/.ssh", mode: 0o700)
            try Machine.write(loginKey + "\n", to: root + "/root/.ssh/authorized_keys", mode: 0o600)
            return
        }
        // useradd --root edits the host's passwd files without running anything inside it.
        // The password is "*" (no password, not locked): sshd refuses keys for locked accounts.
        if Self.ids(of: user, passwd: root + "/etc/passwd") == nil {
            try await Command.run(
                "useradd",
                ["--root", root, "--create-home", "--shell", "/bin/bash", "--password", "*", "--groups", "sudo", user])
        }
        guard let (uid, gid) = Self.ids(of: user, passwd: root + "/etc/passwd") else {
            throw .fileAccess(path: root + "/etc/passwd", reason: "has no entry for \(user) after useradd")
        }
        let home = root + "/home/" + user
        try Machine.makeDirectory(home + "/.ssh", mode: 0o700)
        _ = chown(home + "/.ssh", uid, gid)
        try Machine.write(loginKey + "\n", to: home + "/.ssh/authorized_keys", mode: 0o600, owner: (uid, gid))
        try Machine.write(
            "# Written by labctl: like a cloud image's default user.\n\(user) ALL=(ALL:ALL) NOPASSWD: ALL\n",
            to: root + "/etc/sudoers.d/90-labctl-\(user)", mode: 0o440)
    }

    func publicHostKey() throws(LabError) -> String {
        let path = root + "/etc/ssh/ssh_host_ed25519_key.pub"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .fileAccess(path: path, reason: "cannot be read")
        }
        return text.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// Starts the host's supervisor, detached (its own session, output to the console log) so
    /// the host outlives labctl, and waits until systemd-nspawn runs.
    ///
    /// The supervisor is a small sh loop: swift-subprocess always waits for its child, so a
    /// process that must outlive labctl is started through `setsid --fork`, which returns at
    /// once. The loop puts each boot's nspawn in fresh cgroup directories (written before
    /// exec: nspawn hosts sharing a cgroup collide), and boots again after exit status 133,
    /// which is how nspawn reports a reboot inside the host.
    func boot() async throws(LabError) {
        let nspawn = [
            "systemd-nspawn", "--boot", "--directory=\(state.merged)", "--machine=\(state.machine)",
            "--hostname=\(host.name)", "--register=no", "--keep-unit", "--private-users=no",
            "--network-namespace-path=/run/netns/\(state.netns)", "--resolv-conf=copy-host", "--link-journal=no",
            "--console=read-only",
            // A host's own firewall, as a VM's root has it (verify's drill cuts an app's port
            // off with nft): it acts on the host's private network namespace only.
            "--capability=CAP_NET_ADMIN",
        ]
        Machine.removeTree(state.nspawnPIDFile)
        try await Command.run(
            "setsid", ["--fork", "sh", "-c", Self.supervisorScript, Self.supervisorMarker, state.directory, state.cgroup] + nspawn)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let pid = Machine.readPID(state.nspawnPIDFile), Machine.isAlive(pid),
                Machine.commandLine(of: pid)?.first?.hasSuffix("systemd-nspawn") == true
            {
                return
            }
            if FileManager.default.fileExists(atPath: state.directory + "/exit-status") { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw .hostDidNotStart(host: host.name, log: LocalLab.readableLog(state.consoleLog, lastLines: 8))
    }

    /// $1: the host's state directory, $2: its cgroup path, then the nspawn command.
    static let supervisorScript = #"""
        dir=$1 cg=$2; shift 2
        exec </dev/null >>"$dir/console.log" 2>&1
        echo $$ >"$dir/supervisor.pid"
        boot=0
        while :; do
          boot=$((boot + 1))
          for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$cg/boot-$boot"; done
          mkdir -p "/sys/fs/cgroup/memory/$cg"
          sh -c 'g=$1 cg=$2 dir=$3; shift 3
            for h in systemd unified; do echo $$ >"/sys/fs/cgroup/$h/$g/cgroup.procs"; done
            echo $$ >"/sys/fs/cgroup/memory/$cg/cgroup.procs"
            echo $$ >"$dir/nspawn.pid.new" && mv "$dir/nspawn.pid.new" "$dir/nspawn.pid"
            exec "$@"' nspawn "$cg/boot-$boot" "$cg" "$dir" "$@"
          status=$?
          echo "labctl: systemd-nspawn exited with status $status"
          [ "$status" -eq 133 ] || break
          echo "labctl: the host rebooted; booting it again"
          for h in systemd unified; do
            find "/sys/fs/cgroup/$h/$cg/boot-$boot" -depth -type d -exec rmdir {} + 2>/dev/null
          done
        done
        echo "$status" >"$dir/exit-status"
        rm -f "$dir/supervisor.pid" "$dir/nspawn.pid"
        """#

    static func randomMachineID() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    static func ids(of user: String, passwd path: String) -> (UInt32, UInt32)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 3, fields[0] == user, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) {
                return (uid, gid)
            }
        }
        return nil
    }
}

/// The lab's known_hosts file: one line per host address, replaced on every `up`.
enum KnownHosts {
    static func record(_ entries: [(address: String, key: String)], in path: String) throws(LabError) {
        var pending = Dictionary(entries.map { ($0.address, "\($0.address) \($0.key)") }, uniquingKeysWith: { $1 })
        let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        // A line naming one of the addresses is replaced where it stands (the first one) or
        // dropped (any further one, e.g. an old ecdsa key); other lines are kept as they are.
        var lines: [String] = []
        var written = Set<String>()
        for line in existing.split(separator: "\n").map(String.init) {
            let names = line.split(separator: " ").first.map { $0.split(separator: ",").map(String.init) } ?? []
            guard let address = names.first(where: { pending[$0] != nil || written.contains($0) }) else {
                lines.append(line)
                continue
            }
            if let replacement = pending.removeValue(forKey: address) {
                lines.append(replacement)
                written.insert(address)
            }
        }
        lines += pending.sorted { $0.key < $1.key }.map(\.value)
        let directory = (path as NSString).deletingLastPathComponent
        let directoryExisted = FileManager.default.fileExists(atPath: directory)
        try Machine.makeDirectory(directory, mode: 0o700)
        try Machine.write(lines.joined(separator: "\n") + "\n", to: path, mode: 0o600)
        Machine.giveToInvokingUser(directoryExisted ? [path] : [directory, path])
    }
}
