import Foundation
import SSH

/// A local directory ready to upload: its digest (computed exactly as the host computes it
/// over the copy, see `remoteDigestPipeline`) and a tar stream of it.
///
/// The tar writer is hand-written: none of our dependencies writes tar, the ustar format for
/// plain files and directories is a 512-byte header each, and writing it here keeps the
/// stream deterministic and free of a local `tar` process. Symbolic links and special files
/// are skipped (the host side's digest ignores them the same way).
public struct LocalTree: Sendable, Hashable {
    public var path: String
    public var digest: String
    public var tar: [UInt8]
    public var fileCount: Int
    /// `sha256  ./path` per file, in the host's order: the digest's input.
    var listing: [String] = []

    /// The digest without the named entries directly inside the directory, as
    /// `remoteDigestPipeline(excluding:)` computes it on the host (an upload's `keep`).
    public func digest(excluding names: [String]) -> String {
        if names.isEmpty { return digest }
        let kept = listing.filter { line in
            let path = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).last.map(String.init) ?? ""
            return !names.contains { path == "./" + $0 || path.hasPrefix("./" + $0 + "/") }
        }
        return SHA256Digest.hex(kept.joined())
    }

    /// The digest on the host, run inside the directory: every regular file's sha256 and
    /// `./path`, in byte order of the paths, hashed once more.
    static let remoteDigestPipeline = remoteDigestPipeline(excluding: [])

    /// The same, leaving out the named entries directly inside the directory (an upload's `keep`).
    static func remoteDigestPipeline(excluding names: [String]) -> String {
        let prune = names.isEmpty ? "" : "\\( " + names.map { "-path \(Shell.quote("./" + $0))" }.joined(separator: " -o ") + " \\) -prune -o "
        return "find . \(prune)-type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum | cut -c1-64"
    }

    public static func load(_ path: String) throws(StepFailure) -> LocalTree {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw StepFailure("the upload source \(path) is not a directory here")
        }
        var files: [(relative: String, bytes: [UInt8], mode: Int, mtime: Int)] = []
        var directories: [(relative: String, mode: Int, mtime: Int)] = []
        func walk(_ directory: URL, _ relative: String) throws(StepFailure) {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            } catch {
                throw StepFailure("cannot list \(directory.path): \(error.localizedDescription)")
            }
            for name in names {
                let url = directory.appendingPathComponent(name)
                let childRelative = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(url.path, &info) == 0 else { continue }
                let mode = Int(info.st_mode & 0o7777)
                let mtime = Int(info.st_mtim.tv_sec)
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    directories.append((childRelative, mode, mtime))
                    try walk(url, childRelative)
                case S_IFREG:
                    guard let data = FileManager.default.contents(atPath: url.path) else {
                        throw StepFailure("cannot read \(url.path)")
                    }
                    files.append((childRelative, Array(data), mode, mtime))
                default:
                    continue
                }
            }
        }
        try walk(root, "")

        // The host sorts "./a/b" strings bytewise (LC_ALL=C sort -z): do the same.
        files.sort { Array(("./" + $0.relative).utf8).lexicographicallyPrecedes(Array(("./" + $1.relative).utf8)) }
        let listing = files.map { "\(SHA256Digest.hex($0.bytes))  ./\($0.relative)\n" }
        let digest = SHA256Digest.hex(listing.joined())

        var tar: [UInt8] = []
        directories.sort { $0.relative < $1.relative }
        for directory in directories {
            try TarWriter.append(name: directory.relative + "/", mode: directory.mode, mtime: directory.mtime, body: nil, to: &tar)
        }
        for file in files {
            try TarWriter.append(name: file.relative, mode: file.mode, mtime: file.mtime, body: file.bytes, to: &tar)
        }
        tar += [UInt8](repeating: 0, count: 1024)
        var tree = LocalTree(path: root.path, digest: digest, tar: tar, fileCount: files.count)
        tree.listing = listing
        return tree
    }
}

enum TarWriter {
    static func append(name: String, mode: Int, mtime: Int, body: [UInt8]?, to tar: inout [UInt8]) throws(StepFailure) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(String(String(value, radix: 8).suffix(width - 1)).leftPadded(to: width - 1), at: offset, width: width - 1)
        }
        // ustar: names up to 100 bytes, or a prefix of up to 155 bytes cut at a "/".
        let bytes = Array(name.utf8)
        if bytes.count <= 100 {
            put(name, at: 0, width: 100)
        } else {
            let slashes = bytes.indices.filter { bytes[$0] == UInt8(ascii: "/") && $0 <= 155 && bytes.count - $0 - 1 <= 100 }
            guard let cut = slashes.first, cut > 0 else {
                throw StepFailure("the path \(name) is too long to upload (ustar allows 255 bytes)")
            }
            put(String(decoding: bytes[(cut + 1)...], as: UTF8.self), at: 0, width: 100)
            put(String(decoding: bytes[..<cut], as: UTF8.self), at: 345, width: 155)
        }
        octal(mode, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(body?.count ?? 0, at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        header[156] = body == nil ? UInt8(ascii: "5") : UInt8(ascii: "0")
        put("ustar", at: 257, width: 6)
        put("00", at: 263, width: 2)
        put("root", at: 265, width: 32)
        put("root", at: 297, width: 32)
        // The checksum is computed with its own field as eight spaces.
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(String(sum, radix: 8)).leftPadded(to: 6), at: 148, width: 6)
        header[154] = 0
        header[155] = UInt8(ascii: " ")
        tar += header
        if let body {
            tar += body
            let padding = (512 - body.count % 512) % 512
            tar += [UInt8](repeating: 0, count: padding)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
