import Foundation

/// What labctl can tell about a private key file before handing it to libssh2, so that the
/// failures libssh2 reports with one generic code get a sentence that says what to do.
struct PrivateKeyFile {
    enum Format: Equatable {
        case openssh(keyType: String, encrypted: Bool)
        case pemRSA(encrypted: Bool)
        case pemEC(encrypted: Bool)
        case pkcs8(encrypted: Bool)
        case unknown
    }

    let path: String
    let format: Format

    init(path: String) throws(SSHError.Kind) {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .localFile(path: path, reason: "no such key file; check `key` in the inventory or make one with ssh-keygen -t ed25519")
        }
        if isDirectory.boolValue {
            throw .localFile(path: path, reason: "is a folder, not a private key file; set `key` in the inventory to the key file itself (e.g. ~/.ssh/id_ed25519)")
        }
        guard access(path, R_OK) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw .localFile(path: path, reason: "the key file cannot be read by this user (permissions?); check its owner and mode (chmod 600)")
        }
        guard !data.contains(0), let text = String(validating: data, as: UTF8.self) else {
            throw .localFile(path: path, reason: "is not a private key (binary data); set `key` in the inventory to an OpenSSH private key file such as ~/.ssh/id_ed25519")
        }
        format = Self.format(of: text)
    }

    var isRSA: Bool {
        switch format {
        case .openssh(let type, _): return type == "ssh-rsa"
        case .pemRSA: return true
        default: return false
        }
    }

    var isEncrypted: Bool {
        switch format {
        case .openssh(_, let encrypted), .pemRSA(let encrypted), .pemEC(let encrypted), .pkcs8(let encrypted):
            return encrypted
        case .unknown: return false
        }
    }

    static func format(of text: String) -> Format {
        if text.contains("BEGIN OPENSSH PRIVATE KEY") {
            let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            guard let blob = Data(base64Encoded: body) else { return .unknown }
            return parseOpenSSH(Array(blob)) ?? .unknown
        }
        let encrypted = text.contains("ENCRYPTED")
        if text.contains("BEGIN RSA PRIVATE KEY") { return .pemRSA(encrypted: encrypted) }
        if text.contains("BEGIN EC PRIVATE KEY") { return .pemEC(encrypted: encrypted) }
        if text.contains("BEGIN PRIVATE KEY") || text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return .pkcs8(encrypted: encrypted)
        }
        return .unknown
    }

    /// openssh-key-v1: magic, cipher name, kdf name, kdf options, key count, then the public key,
    /// whose first string is the key type. Everything up to there is stored unencrypted.
    private static func parseOpenSSH(_ bytes: [UInt8]) -> Format? {
        let magic = Array("openssh-key-v1".utf8) + [0]
        guard bytes.starts(with: magic) else { return nil }
        var offset = magic.count
        func readString() -> [UInt8]? {
            guard offset + 4 <= bytes.count else { return nil }
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            offset += 4
            guard length >= 0, offset + length <= bytes.count else { return nil }
            defer { offset += length }
            return Array(bytes[offset..<offset + length])
        }
        guard let cipher = readString(), readString() != nil, readString() != nil else { return nil }
        offset += 4  // number of keys
        guard let publicKey = readString() else { return nil }
        guard publicKey.count >= 4 else { return nil }
        let typeLength = publicKey[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard 4 + typeLength <= publicKey.count else { return nil }
        let type = String(decoding: publicKey[4..<4 + typeLength], as: UTF8.self)
        return .openssh(keyType: type, encrypted: String(decoding: cipher, as: UTF8.self) != "none")
    }
}
