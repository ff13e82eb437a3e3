import ArgumentParser
import Foundation
import LabEngine
import LabLocal
import LabSpec
import SSH

/// `labctl lab`: the inventory's hosts as systemd-nspawn containers on this machine.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Run the inventory's hosts as local containers, so labctl can be tried without VMs.",
        discussion: """
            The local lab turns this Linux machine into the machines the inventory describes. \
            Each host is a systemd-nspawn container that boots a real systemd with sshd, has its \
            own address on a private bridge, its own hostname and machine-id, and its own \
            filesystem changes (an overlay over a shared Debian bookworm base). labctl then \
            manages the hosts over SSH exactly as it would manage real VMs.

            What it needs: root for `up` and `down`, and Debian or Ubuntu with systemd-container, \
            debootstrap and iproute2 (labctl installs missing ones with apt-get). The first `up` \
            builds the base once (1 to 4 minutes, about 650 MB in the cache folder, by default \
            /var/cache/labctl) with nginx, nodejs, npm and git in the hosts' apt cache, so \
            playbooks install them without the internet. After that a lab is up in seconds.

            The inventory's `lab` section sets the subnet (default 198.18.42.0/24), the bridge \
            (default labctl0) and the cache folder. Host names, addresses and login users come \
            from `hosts`; a non-root user (like Multipass's `ubuntu`) gets passwordless sudo. \
            labctl installs the inventory's key on every host (making an ed25519 pair if the \
            file does not exist) and writes the hosts' host keys to the inventory's known_hosts \
            file, so SSH to the hosts is checked strictly, as with real machines.

            Examples:
              sudo labctl lab up          # build the base if needed, boot every host
              labctl lab status           # hosts, addresses, memory, uptime
              labctl lab status --log proxy   # ... and the last lines of proxy's journal
              labctl lab ssh app1         # a shell on app1, as its inventory user
              labctl lab ssh proxy -- systemctl status nginx   # after labctl up
              labctl lab ssh app1 --print # the ssh command line, to use elsewhere
              sudo labctl lab up --nat    # the hosts may also reach Debian's archive
              sudo labctl lab down        # stop the hosts and remove every trace
            """,
        subcommands: [Up.self, Down.self, Status.self, SSH.self]
    )

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create and boot the inventory's hosts (hosts already running are left alone).",
            discussion: """
                Waits until every host answers over SSH (login with the lab's key, host key checked, \
                systemd finished booting). A host that stopped (its processes were killed, the \
                machine restarted) is booted again on its own disk. If something fails half-way, \
                what this run created is removed again. Hosts run on after labctl exits.
                """)

        @OptionGroup var options: InventoryOptions
        @Flag(help: "Build the base root filesystem again (e.g. for Debian's latest security fixes).")
        var rebuild = false
        @Flag(help: "Let the hosts reach the internet through this machine (masquerading); `down` undoes it.")
        var nat = false

        func run() async throws {
            let lab = try LabCommand.lab(options, nat: nat)
            let started = ContinuousClock.now
            do {
                try await lab.up(rebuild: rebuild, progress: LabCommand.printProgress)
            } catch {
                throw LabCommand.failure(error)
            }
            let seconds = (ContinuousClock.now - started).seconds
            print(String(format: "lab %@ is up (%.1f s); try: labctl lab ssh %@", lab.definition.name, seconds,
                         lab.definition.hosts.first?.name ?? "HOST"))
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the hosts and remove their overlays, namespaces, bridge, cgroups and NAT rules.",
            discussion: """
                The hosts' disks (their changes over the base) go too: the next `up` starts from \
                the clean base. Safe to run when nothing is up or after a crash; only processes \
                the lab started are ended. The cached base stays for the next `up`.
                """)

        @OptionGroup var options: InventoryOptions

        func run() async throws {
            let lab = try LabCommand.lab(options)
            do {
                try await lab.down(progress: LabCommand.printProgress)
            } catch {
                throw LabCommand.failure(error)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each host: running or not, address, PID, memory and uptime.",
            discussion: """
                --log HOST adds the last lines of the host's systemd journal (read on this machine \
                from the host's disk with journalctl), or of its console log (boot messages) when \
                it has no journal labctl can read, saying why.
                """)

        @OptionGroup var options: InventoryOptions
        @Option(help: ArgumentHelp("Also show the last lines of this host's journal.", valueName: "host"))
        var log: String?
        /// --json: a LabStatusReport.
        @OptionGroup var output: JSONOutputOptions

        func run() async throws {
            let lab = try LabCommand.lab(options)
            let hosts: [LabHostStatus]
            var hostLog: HostLog?
            do {
                // An unknown host is bad input before anything is shown.
                if let log { hostLog = try await lab.hostLog(host: log, lastLines: 30) }
                hosts = try await lab.status()
            } catch {
                throw LabCommand.failure(error)
            }
            Terminal.line(LabCommand.statusTable(hosts))
            if let hostLog {
                let what = hostLog.source == .journal ? "journal" : "console"
                Terminal.line("\n--- \(what) of \(hostLog.host) (\(hostLog.path)) ---")
                if let note = hostLog.note { Terminal.line(note) }
                Terminal.line(hostLog.lines.joined(separator: "\n"))
            }
            output.write(LabStatusReport(lab: lab.definition.name, hosts: hosts, log: hostLog))
        }
    }

    struct SSH: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Open a shell on a lab host (or run a command there) with the lab's key and known_hosts.")

        @OptionGroup var options: InventoryOptions
        @Argument(help: "The host's name in the inventory.")
        var host: String
        @Flag(help: "Print the ssh command line instead of running it.")
        var print = false
        @Argument(parsing: .postTerminator, help: "A command to run instead of a shell (after `--`).")
        var command: [String] = []

        func run() async throws {
            let lab = try LabCommand.lab(options)
            var line: [String]
            do {
                line = try lab.sshCommandLine(host: host)
            } catch {
                throw LabCommand.failure(error)
            }
            line += command
            if print {
                Swift.print(line.map(ShellQuoting.quote).joined(separator: " "))
                return
            }
            // ssh to a host that is not running would wait for TCP's own timeout, minutes.
            let status = (try? await lab.status()) ?? []
            if let entry = status.first(where: { $0.name == host }), !entry.running {
                Terminal.error("\(host) is not running in lab \(lab.definition.name); start the lab with `labctl lab up -i \(ShellQuoting.quote(options.inventory))`")
                throw LabctlExit.localMachine.error
            }
            // Replaces labctl with ssh, so the terminal, signals and exit status are ssh's own.
            var arguments = line.map { strdup($0) } + [nil]
            execvp("ssh", &arguments)
            throw LabCommand.failure(MappingError(description: "cannot run ssh (\(String(cString: strerror(errno)))); install openssh-client"))
        }
    }

    // MARK: inventory → lab

    /// For an inventory of the local lab (every host in `lab.subnet`) none of whose hosts runs:
    /// the sentence that says so and how to start it. Said when its hosts could not be reached.
    static func notRunningHint(inventoryPath: String) async -> String? {
        guard let inventory = try? InventoryLoader.load(path: inventoryPath), inventory.isLocalLab,
            let definition = try? LabDefinition(inventory: inventory),
            let status = try? await LabBackends.make(definition).status(), !status.contains(where: \.running)
        else { return nil }
        let argument = InventoryLoader.isDefaultPath(inventoryPath) ? "" : " -i " + ShellQuoting.quote(inventoryPath)
        return "the local lab '\(inventory.name)' is not running (not started, or taken down with labctl lab down): start it with `sudo labctl lab up\(argument)`"
    }

    /// The lab of the inventory file; a bad inventory exits 4 like every other verb, and so
    /// does an inventory of real machines (`Inventory.isLocalLab`): their addresses must not
    /// become containers, nor their hosts be reported as stopped lab hosts.
    static func lab(_ options: InventoryOptions, nat: Bool = false) throws -> any LabBackend {
        let inventory = try options.loadFile()
        if !inventory.isLocalLab {
            Terminal.error(notALabSentence(inventory, path: options.inventory))
            throw LabctlExit.badInput.error
        }
        do {
            return LabBackends.make(try LabDefinition(inventory: inventory, nat: nat))
        } catch {
            throw failure(error)
        }
    }

    /// Why `labctl lab` refuses an inventory whose hosts are not all in `lab.subnet`, and what to do.
    static func notALabSentence(_ inventory: Inventory, path: String) -> String {
        let outside = inventory.hostsOutsideLabSubnet
        guard !outside.isEmpty else { return "\(path) has no hosts, so there is no local lab to run; add hosts in lab.subnet (\(inventory.lab.subnet))" }
        let listed = outside.prefix(3).map { "\($0.name) (\($0.address))" }.joined(separator: ", ") + (outside.count > 3 ? " and \(outside.count - 3) more" : "")
        return "\(path) is not a local lab inventory: \(listed) \(outside.count == 1 ? "is" : "are") outside its lab subnet \(inventory.lab.subnet), "
            + "so labctl takes its hosts for real machines; reach them with labctl ping/up -i \(ShellQuoting.quote(path)), "
            + "or use `labctl lab` with an inventory whose hosts all lie in lab.subnet (like inventory.json)"
    }

    /// What labctl itself could not do (run ssh), as one sentence.
    struct MappingError: Error, CustomStringConvertible {
        var description: String
    }

    // MARK: output

    @Sendable static func printProgress(_ progress: LabProgress) {
        let who = progress.host.map { "\($0): " } ?? ""
        switch progress.kind {
        case .phase: print("==> \(who)\(progress.message)")
        case .detail: print("    \(who)\(progress.message)")
        case .warning: print("warning: \(who)\(progress.message)")
        }
        fflush(nil)
    }

    static func statusTable(_ hosts: [LabHostStatus]) -> String {
        var rows = [["HOST", "STATE", "ADDRESS", "USER", "PID", "MEMORY", "UPTIME"]]
        for host in hosts {
            rows.append([
                host.name, host.running ? "running" : "stopped", host.address, host.user,
                host.pid.map(String.init) ?? "-",
                host.memoryBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "-",
                host.uptime.map(formatUptime) ?? "-",
            ])
        }
        return Terminal.table(rows)
    }

    static func formatUptime(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
        return "\(seconds / 3600)h\(seconds / 60 % 60)m"
    }

    /// LabError already reads as one sentence: print it alone (without the usage text that
    /// ArgumentParser adds to validation errors) and fail.
    static func failure(_ error: any Error) -> any Error {
        Terminal.error(String(describing: error))
        // What the inventory or the command line got wrong is bad input (4); the rest is this
        // machine failing to run the lab (5).
        return (error as? LabError)?.isBadInput == true ? LabctlExit.badInput.error : LabctlExit.localMachine.error
    }
}
