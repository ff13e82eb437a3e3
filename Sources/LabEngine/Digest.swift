import CLibSSH2
import Foundation

/// SHA-256 from libcrypto, which the SSH module links already (libssh2 is built on OpenSSL):
/// no extra dependency, and the same digest `sha256sum` prints on the hosts.
enum Digest {
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { input in
            _ = SHA256(input.baseAddress, input.count, &digest)
        }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    static func sha256Hex(_ text: String) -> String { sha256Hex(Array(text.utf8)) }
}
