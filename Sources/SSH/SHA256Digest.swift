import CLibSSH2
import Foundation

/// SHA-256 from libcrypto, which this module links already (libssh2 is built on OpenSSL): no
/// extra dependency, and the same digest `sha256sum` prints on the hosts. The one SHA-256 in
/// labctl: host key fingerprints here, file digests in the engine.
public enum SHA256Digest {
    public static func bytes(_ input: [UInt8]) -> [UInt8] {
        _ = LibSSH2.cryptoInitialised
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        input.withUnsafeBufferPointer { buffer in
            _ = SHA256(buffer.baseAddress, buffer.count, &digest)
        }
        return digest
    }

    /// Lower-case hex, as `sha256sum` prints it.
    public static func hex(_ input: [UInt8]) -> String {
        bytes(input).map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ text: String) -> String { hex(Array(text.utf8)) }

    /// As OpenSSH prints a key's fingerprint: "SHA256:" and unpadded base64.
    static func opensshFingerprint(_ key: [UInt8]) -> String {
        var encoded = Data(bytes(key)).base64EncodedString()
        while encoded.hasSuffix("=") { encoded.removeLast() }
        return "SHA256:" + encoded
    }
}
