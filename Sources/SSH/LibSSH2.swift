import CLibSSH2
import Foundation

/// libssh2_init must run once per process before any session; a static let is initialised
/// exactly once, thread-safely.
enum LibSSH2 {
    static let initialised: Bool = {
        libssh2_init(0) == 0
    }()

    static let again: Int32 = LIBSSH2_ERROR_EAGAIN
}

/// SHA-256 as OpenSSH prints it: "SHA256:" and unpadded base64.
func opensshFingerprint(_ key: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
    key.withUnsafeBufferPointer { buffer in
        _ = SHA256(buffer.baseAddress, buffer.count, &digest)
    }
    var encoded = Data(digest).base64EncodedString()
    while encoded.hasSuffix("=") { encoded.removeLast() }
    return "SHA256:" + encoded
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
