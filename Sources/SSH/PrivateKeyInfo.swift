/// Facts about a private key file that callers need before connecting.
public enum PrivateKeyInfo {
    /// True when the key file exists and is protected by a passphrase, so a caller can ask for it.
    public static func needsPassphrase(_ path: String) -> Bool {
        (try? PrivateKeyFile(path: path))?.isEncrypted ?? false
    }
}
