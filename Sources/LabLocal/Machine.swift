import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Direct system calls and /proc, /sys reads. These are single calls where running a tool
/// would cost a process each (mount, kill, reading cgroup files), so they are hand-written.
enum Machine {
    static var isRoot: Bool { geteuid() == 0 }

    /// Reads a /proc or /sys file whole. Foundation's file reading stops after the first read
    /// for files that report size 0, which /proc files do: /proc/self/mountinfo came back cut
    /// at 4 KB once other labs' mounts made it longer, and mounts went unnoticed.
    static func readKernelFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: processes

    /// The process's command line, or nil if it does not exist.
    static func commandLine(of pid: Int32) -> [String]? {
        guard let text = readKernelFile("/proc/\(pid)/cmdline"), !text.isEmpty else { return nil }
        return text.split(separator: "\0").map(String.init)
    }

    /// Whether `pid` is alive and not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = readKernelFile("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    static func readPID(_ path: String) -> Int32? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func signal(_ pid: Int32, _ signal: Int32) {
        _ = kill(pid, signal)
    }

    // MARK: cgroups

    /// The hierarchies a host's processes are placed in: the two systemd needs (systemd-nspawn
    /// must start from its own cgroup in both) and memory, for `status`.
    static let cgroupHierarchies = ["systemd", "unified", "memory"]
    static let cgroupRoot = "/sys/fs/cgroup"

    /// Every PID in the cgroup `relative` and below, in the systemd hierarchy (which holds all
    /// of a host's processes, whatever its systemd did with them).
    static func pids(inCgroup relative: String) -> [Int32] {
        let base = "\(cgroupRoot)/systemd/\(relative)"
        var result: [Int32] = []
        for dir in directoriesDeepestFirst(base) {
            if let text = readKernelFile(dir + "/cgroup.procs") {
                result += text.split(separator: "\n").compactMap { Int32($0) }
            }
        }
        return result
    }

    /// The directory tree below `root`, children before parents.
    static func directoriesDeepestFirst(_ root: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            return []
        }
        var result: [String] = []
        let children = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for child in children.sorted() {
            let path = root + "/" + child
            var childIsDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &childIsDirectory),
                childIsDirectory.boolValue
            {
                result += directoriesDeepestFirst(path)
            }
        }
        result.append(root)
        return result
    }

    /// Removes a cgroup and its children with rmdir (cgroup files cannot be unlinked); returns
    /// the directories that could not be removed (still holding processes).
    @discardableResult
    static func removeCgroup(_ relative: String) -> [String] {
        var left: [String] = []
        for hierarchy in cgroupHierarchies {
            for dir in directoriesDeepestFirst("\(cgroupRoot)/\(hierarchy)/\(relative)") where rmdir(dir) != 0 {
                left.append(dir)
            }
        }
        return left
    }

    /// Removes `relative` in every hierarchy if it is empty (e.g. labctl/<lab> after its hosts).
    static func removeEmptyCgroup(_ relative: String) {
        for hierarchy in cgroupHierarchies { _ = rmdir("\(cgroupRoot)/\(hierarchy)/\(relative)") }
    }

    /// What the host's processes hold resident: anonymous memory, shared memory and mapped
    /// files (binaries, libraries), from the memory cgroup's totals. Reclaimable page cache
    /// is left out: right after `apt-get install` it would count hundreds of MB of .deb and
    /// file pages that the kernel drops as soon as memory is needed.
    static func memoryInUse(cgroup relative: String) -> UInt64? {
        guard let stat = readKernelFile("\(cgroupRoot)/memory/\(relative)/memory.stat") else { return nil }
        var total: UInt64 = 0
        var found = false
        for line in stat.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, ["total_rss", "total_shmem", "total_mapped_file"].contains(String(parts[0])),
                let value = UInt64(parts[1])
            else { continue }
            total += value
            found = true
        }
        return found ? total : nil
    }

    // MARK: mounts

    static func isMountPoint(_ path: String) -> Bool {
        guard let text = readKernelFile("/proc/self/mountinfo") else { return false }
        return text.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 4 && fields[4] == path
        }
    }

    static func mountOverlay(lower: String, upper: String, work: String, at target: String) throws(LabError) {
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(work)"
        guard mount("overlay", target, "overlay", 0, options) == 0 else {
            throw .commandFailed(
                command: "mount -t overlay overlay -o \(options) \(target)", status: "failed",
                output: String(cString: strerror(errno)))
        }
    }

    /// Unmounts `path`; falls back to a lazy unmount if something still holds it busy.
    static func unmount(_ path: String) throws(LabError) {
        guard isMountPoint(path) else { return }
        if umount2(path, 0) == 0 { return }
        if errno == EBUSY, umount2(path, Int32(MNT_DETACH)) == 0 { return }
        throw .commandFailed(command: "umount \(path)", status: "failed", output: String(cString: strerror(errno)))
    }

    // MARK: files

    static func write(_ text: String, to path: String, mode: Int = 0o644, owner: (uid: UInt32, gid: UInt32)? = nil)
        throws(LabError)
    {
        do {
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            if let owner { _ = chown(path, owner.uid, owner.gid) }
        } catch {
            throw .fileAccess(path: path, reason: "cannot be written (\(error.localizedDescription))")
        }
    }

    /// Writes into an existing file without replacing it (for /proc and /sys files).
    static func writeInPlace(_ text: String, to path: String) throws(LabError) {
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw .fileAccess(path: path, reason: "cannot be opened for writing")
        }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data(text.utf8)) } catch {
            throw .fileAccess(path: path, reason: "cannot be written (\(error.localizedDescription))")
        }
    }

    static func makeDirectory(_ path: String, mode: Int = 0o755) throws(LabError) {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw .fileAccess(path: path, reason: "cannot be created (\(error.localizedDescription))")
        }
    }

    /// Under `sudo`, files labctl makes for the user (the login key, known_hosts) go to the
    /// user who ran sudo, so `labctl lab ssh` and playbooks work without root afterwards.
    /// Only files labctl created or rewrote are handed over, and only when it runs via sudo.
    static func giveToInvokingUser(_ paths: [String]) {
        let environment = ProcessInfo.processInfo.environment
        guard geteuid() == 0, let uid = environment["SUDO_UID"].flatMap(UInt32.init),
            let gid = environment["SUDO_GID"].flatMap(UInt32.init), uid != 0
        else { return }
        for path in paths { _ = chown(path, uid, gid) }
    }

    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    // MARK: locks

    /// Holds an exclusive lock on `path` while `body` runs, so two labctl runs never change
    /// one lab at once. flock(2) directly: the lock lives as long as the open file, which a
    /// child process could not hold for us. O_CLOEXEC keeps it out of the hosts' supervisors.
    static func withLock<T>(
        _ path: String, waiting: @Sendable () -> Void, _ body: () async throws(LabError) -> T
    ) async throws(LabError) -> T {
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fileAccess(path: path, reason: "cannot be opened as a lock file") }
        defer { close(fd) }
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if !told {
                waiting()
                told = true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await body()
    }

    // MARK: network

    /// Whether something answers on `address`:`port` with an SSH banner within `timeout`.
    /// A plain socket: the lab waits on many hosts at once, every 50 ms, for a few seconds.
    static func sshBanner(address: String, port: UInt16 = 22, timeout: Duration) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return false }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 || errno == EINPROGRESS else { return false }
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        while ContinuousClock.now < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            let ms = max(1, left.pollMilliseconds)
            guard poll(&pfd, 1, ms) > 0 else { return false }
            if pfd.revents & Int16(POLLERR | POLLHUP) != 0 && pfd.revents & Int16(POLLIN) == 0 { return false }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return false }
            received += buffer[0..<count]
            if received.count >= 4 { return received.starts(with: Array("SSH-".utf8)) }
        }
        return false
    }
}
