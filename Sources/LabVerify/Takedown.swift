import Foundation
import LabSpec
import SSH

/// How the failover drill takes an app server down.
public enum DrillStopMethod: String, Sendable, Hashable, CaseIterable, Codable {
    /// The app's systemd unit where the host has it loaded and running; a firewall cut elsewhere
    /// (an app started by hand, with nohup or pm2).
    case auto
    /// `systemctl stop` of the app's unit (`--service UNIT`, default the app's name).
    case service
    /// The app's port cut off on the app host: new and open TCP connections to it from anywhere
    /// but the host itself are reset, as if nothing listened. Works however the app runs.
    case firewall
    /// The app host's power cut (a local lab's host, through its backend): the harshest
    /// failover, nothing on the host gets to say goodbye. It is powered on again and boots.
    case poweroff
}

/// labctl command lines for hints, with the inventory the user gave: a hint is a command the
/// user can paste, for the host it is about.
public struct LabctlHints: Sendable, Hashable {
    /// `-i FILE` when the user's inventory is not the default one; nil: none needed.
    public var inventoryPath: String?

    public init(inventoryPath: String? = nil) {
        self.inventoryPath = inventoryPath
    }

    /// Hints for the inventory read from `file`: `-i FILE` unless it is the default one.
    public init(inventoryFile file: String?) {
        self.inventoryPath = file.flatMap { InventoryLoader.isDefaultPath($0) ? nil : $0 }
    }

    /// `labctl exec HOST --become [-i FILE] -- WORDS`.
    public func exec(_ host: String, _ words: [String]) -> String {
        (["labctl", "exec", host, "--become"] + inventoryWords + ["--"] + words).map(ShellQuoting.quote).joined(separator: " ")
    }

    /// `labctl VERB… [-i FILE]`.
    public func labctl(_ words: [String]) -> String {
        (["labctl"] + words + inventoryWords).map(ShellQuoting.quote).joined(separator: " ")
    }

    private var inventoryWords: [String] { inventoryPath.map { ["-i", $0] } ?? [] }
}

extension ServiceController {
    /// What taking the host down did, in words, for the report.
    public func stopDescription(_ host: InventoryHost) -> String { "stopped the app on \(host.name)" }
    public func startDescription(_ host: InventoryHost) -> String { "started the app on \(host.name)" }
    /// What the user runs to put the host back by hand when starting it again failed.
    public func manualStart(_ host: InventoryHost, hints: LabctlHints) -> String? { nil }
}

/// What an app server is like for the drill, asked over SSH before it starts: whether the app
/// is a systemd unit that runs, and which firewall tool the host has. The same command takes
/// away a cut an earlier drill left (labctl was killed before it could restore it), so the
/// next run repairs what a cut run left.
struct DrillHostFacts: Sendable, Hashable {
    /// systemd's LoadState of the unit ("loaded", "not-found"); nil when systemctl did not answer.
    var loadState: String?
    /// systemd's ActiveState ("active", "inactive", "failed").
    var activeState: String?
    /// "nft", "iptables" or nil.
    var firewallTool: String?
    /// A cut left by an earlier drill was found and removed.
    var removedLeftoverCut: Bool

    var unitRuns: Bool { loadState == "loaded" && activeState == "active" }
    var unitExists: Bool { loadState == "loaded" }

    static func parse(_ output: String) -> DrillHostFacts {
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        func value(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }
        return DrillHostFacts(
            loadState: value("load"), activeState: value("active"),
            firewallTool: value("tool").flatMap { $0 == "none" ? nil : $0 },
            removedLeftoverCut: values["removed"] == "yes")
    }
}

/// The drill's shell side on an app host, run as root. Written out rather than one command per
/// action so that a cut and its removal are the same rules, and a later run finds and removes
/// exactly what an earlier one added: the nft table `labctl_drill`, or iptables rules with the
/// comment `labctl-drill`.
enum DrillHostScript {
    static let text = #"""
        set -u
        action=$1 port=$2 unit=$3
        tool=none
        if command -v nft >/dev/null 2>&1; then tool=nft; elif command -v iptables >/dev/null 2>&1; then tool=iptables; fi
        remove_cut() {
          removed=no
          if command -v nft >/dev/null 2>&1 && nft list table inet labctl_drill >/dev/null 2>&1; then
            nft delete table inet labctl_drill && removed=yes
          fi
          for cmd in iptables ip6tables; do
            command -v "$cmd" >/dev/null 2>&1 || continue
            while n=$("$cmd" -w -L INPUT -n --line-numbers 2>/dev/null | awk '/labctl-drill/ { print $1; exit }'); [ -n "$n" ]; do
              "$cmd" -w -D INPUT "$n" || break
              removed=yes
            done
          done
          echo "removed=$removed"
        }
        case $action in
        inspect)
          echo "tool=$tool"
          echo "load=$(systemctl show -p LoadState --value -- "$unit" 2>/dev/null)"
          echo "active=$(systemctl show -p ActiveState --value -- "$unit" 2>/dev/null)"
          remove_cut
          ;;
        cut)
          remove_cut >/dev/null
          case $tool in
          nft)
            printf 'table inet labctl_drill {\n chain input {\n  type filter hook input priority -10; policy accept;\n  iifname != "lo" tcp dport %s reject with tcp reset\n }\n}\n' "$port" | nft -f -
            ;;
          iptables)
            for cmd in iptables ip6tables; do
              command -v "$cmd" >/dev/null 2>&1 || continue
              "$cmd" -w -I INPUT 1 ! -i lo -p tcp --dport "$port" -m comment --comment labctl-drill -j REJECT --reject-with tcp-reset || exit 1
            done
            ;;
          *)
            echo "neither nft nor iptables is installed" >&2
            exit 3
            ;;
          esac
          ;;
        restore)
          remove_cut
          ;;
        esac
        """#

    static func command(_ action: String, port: Int, unit: String) -> String {
        ["sh", "-c", text, "labctl-drill", action, String(port), unit].map(ShellQuoting.quote).joined(separator: " ")
    }
}

/// Takes an app server down by cutting its port off on the host (`DrillStopMethod.firewall`).
public struct FirewallCutController: ServiceController {
    public let runner: any HostCommandRunner
    public let port: Int
    public let timeout: Duration

    public init(runner: any HostCommandRunner, port: Int, timeout: Duration = .seconds(60)) {
        self.runner = runner
        self.port = port
        self.timeout = timeout
    }

    public func stop(_ host: InventoryHost) async throws { try await run("cut", host) }
    public func start(_ host: InventoryHost) async throws { try await run("restore", host) }

    public func stopDescription(_ host: InventoryHost) -> String {
        "cut :\(port) off on \(host.name) with a firewall rule (TCP from other hosts reset)"
    }

    public func startDescription(_ host: InventoryHost) -> String { "removed the firewall rule on \(host.name)" }

    public func manualStart(_ host: InventoryHost, hints: LabctlHints) -> String? {
        // verify removes a cut an earlier drill left when it finds the server not answering.
        "run \(hints.labctl(["verify"])), which removes the drill's firewall rule from \(host.name)"
    }

    private func run(_ action: String, _ host: InventoryHost) async throws {
        try await runner.runAsRoot(
            DrillHostScript.command(action, port: port, unit: "-"), on: host, timeout: timeout,
            failure: ServiceControlError(
                host: host.name, action: action == "cut" ? "cut off" : "open again", unit: ":\(port)",
                detail: "the firewall command exited with status"))
    }
}

/// Takes an app server down by cutting its power (`DrillStopMethod.poweroff`) and boots it
/// again: what powers a host off and on is the lab's backend, given by the caller.
public struct PowerCutController: ServiceController {
    public let powerOff: @Sendable (String) async throws -> Void
    public let powerOn: @Sendable (String) async throws -> Void

    public init(powerOff: @escaping @Sendable (String) async throws -> Void, powerOn: @escaping @Sendable (String) async throws -> Void) {
        self.powerOff = powerOff
        self.powerOn = powerOn
    }

    public func stop(_ host: InventoryHost) async throws { try await powerOff(host.name) }
    public func start(_ host: InventoryHost) async throws { try await powerOn(host.name) }

    public func stopDescription(_ host: InventoryHost) -> String { "powered \(host.name) off (a power cut, no shutdown)" }
    public func startDescription(_ host: InventoryHost) -> String { "powered \(host.name) on; it booted from its disk" }
    public func manualStart(_ host: InventoryHost, hints: LabctlHints) -> String? {
        "power it on with sudo \(hints.labctl(["lab", "up"])), which boots the lab's stopped hosts"
    }
}

extension SystemdServiceController {
    public func stopDescription(_ host: InventoryHost) -> String { "stopped \(unit) on \(host.name) (systemctl stop)" }
    public func startDescription(_ host: InventoryHost) -> String { "started \(unit) on \(host.name)" }
    public func manualStart(_ host: InventoryHost, hints: LabctlHints) -> String? {
        "start it with \(hints.exec(host.name, ["systemctl", "start", unit]))"
    }
}
