import Foundation
import SSH

/// What runs a lab's hosts on this machine: the lab verbs (`labctl lab up/down/status/ssh`)
/// and the tests talk to a lab through this alone, so that another backend (VMs through
/// libvirt, issue 19's next part) is one more implementation.
public protocol LabBackend: Sendable {
    var definition: LabDefinition { get }
    /// Makes and boots every host that does not run yet and waits until each answers over SSH;
    /// hosts that run are left alone.
    func up(rebuild: Bool, progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError)
    /// Stops every host and removes everything `up` made; safe when nothing is up.
    func down(progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError)
    /// Every host of the definition (and any other the lab still runs).
    func status() async throws(LabError) -> [LabHostStatus]
    /// The host's last log lines (its journal, else its console).
    func hostLog(host: String, lastLines: Int) async throws(LabError) -> HostLog
    /// The OpenSSH command line that logs in to the host.
    func sshCommandLine(host: String) throws(LabError) -> [String]
    /// How labctl's own SSH client reaches the host.
    func sshOptions(host: String) throws(LabError) -> SSHOptions
    /// Cuts the host's power: everything on it stops at once, without a shutdown; its disk stays.
    func powerOff(host: String, progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError)
    /// Boots a powered-off host again from its disk and waits until it answers over SSH.
    func powerOn(host: String, progress: @escaping @Sendable (LabProgress) -> Void) async throws(LabError)
}

extension LabBackend {
    public func up(rebuild: Bool = false) async throws(LabError) { try await up(rebuild: rebuild, progress: { _ in }) }
    public func down() async throws(LabError) { try await down(progress: { _ in }) }
    public func powerOff(host: String) async throws(LabError) { try await powerOff(host: host, progress: { _ in }) }
    public func powerOn(host: String) async throws(LabError) { try await powerOn(host: host, progress: { _ in }) }
}

/// The backends a lab definition can name. Only nspawn exists today.
public enum LabBackends {
    public static func make(_ definition: LabDefinition) -> any LabBackend {
        LocalLab(definition: definition)
    }
}
