import Foundation

/// The key pair labctl logs in with, made on this machine when it does not exist yet: the local
/// lab's, and the one `labctl keys install` puts on real hosts.
public enum LoginKey {
    /// The public key line of the pair at `path` (an ed25519 key without passphrase is made when
    /// there is no file; `making` is told first). Under sudo, what is made goes to the user who
    /// ran it, so labctl works without root afterwards.
    public static func ensure(
        at path: String, comment: String, making: (String) -> Void = { _ in }
    ) async throws(LabError) -> String {
        if !FileManager.default.fileExists(atPath: path) {
            making(path)
            let directory = (path as NSString).deletingLastPathComponent
            let directoryExisted = FileManager.default.fileExists(atPath: directory)
            try Machine.makeDirectory(directory, mode: 0o700)
            try await Command.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
            Machine.giveToInvokingUser((directoryExisted ? [] : [directory]) + [path, path + ".pub"])
        }
        if !FileManager.default.fileExists(atPath: path + ".pub") {
            let publicKey = try await Command.run("ssh-keygen", ["-y", "-f", path])
            try Machine.write(publicKey, to: path + ".pub")
            Machine.giveToInvokingUser([path + ".pub"])
        }
        guard let text = try? String(contentsOfFile: path + ".pub", encoding: .utf8) else {
            throw .fileAccess(path: path + ".pub", reason: "cannot be read")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
