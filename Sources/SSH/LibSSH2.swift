import CLibSSH2
import Foundation

/// libssh2_init must run once per process before any session; a static let is initialised
/// exactly once, thread-safely.
enum LibSSH2 {
    static let initialised: Bool = {
        _ = cryptoInitialised
        return libssh2_init(0) == 0
    }()

    /// OpenSSL set up before its first use, without its exit-time cleanup (see the shim): every
    /// path into libcrypto (libssh2, SHA256Digest) goes through here first.
    static let cryptoInitialised: Bool = {
        labctl_crypto_init_without_atexit()
        return true
    }()

    static let again: Int32 = LIBSSH2_ERROR_EAGAIN
}

/// The SSH wire name of a libssh2 host key type, as known_hosts writes it.
func hostKeyTypeName(_ type: Int32) -> String {
    switch type {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa"
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss"
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256"
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384"
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521"
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519"
    default: return "unknown"
    }
}
