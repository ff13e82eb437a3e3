import LabSpec
import SSH

/// What the user gives at run time rather than in the inventory: secrets (never in a file or in
/// argv) and overrides of the inventory's SSH settings.
public struct ConnectionSecrets: Sendable {
    public var keyPassphrase: String?
    /// Tried after the key and the agent; meant for installing a key the first time.
    public var loginPassword: String?
    /// sudo's password for hosts with `become`; nil means passwordless sudo (`sudo -n`).
    public var becomePassword: String?
    public var knownHostsPath: String?
    public var hostKeyPolicy: HostKeyPolicy?
    /// -vvv: where each host's connection line and command lines go (`SSHOptions.trace`).
    public var trace: (@Sendable (String) -> Void)?

    public init(
        keyPassphrase: String? = nil, loginPassword: String? = nil, becomePassword: String? = nil,
        knownHostsPath: String? = nil, hostKeyPolicy: HostKeyPolicy? = nil
    ) {
        self.keyPassphrase = keyPassphrase
        self.loginPassword = loginPassword
        self.becomePassword = becomePassword
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
    }

    public func become(for host: InventoryHost) -> Become? {
        guard host.become else { return nil }
        return becomePassword.map(Become.sudoWithPassword) ?? .sudo
    }
}
