import Foundation
import LabSpec
@testable import LabVerify
import TestSupport

/// The lab's HTTP side on loopback: two stand-in apps (127.0.0.2 and 127.0.0.3, one port) and
/// nginx on 127.0.0.1 as their upstream, configured like the deploy playbook's proxy
/// (proxy_next_upstream, short connect timeout, X-Upstream), each a real process of this
/// machine that `shutDown` ends.
final class LoopbackLab: @unchecked Sendable {
    static let domain = "wayshub.test"
    /// app3 only with `backup: true`, as nginx's backup server.
    static let allAppAddresses: KeyValuePairs<String, String> = ["app1": "127.0.0.2", "app2": "127.0.0.3", "app3": "127.0.0.4"]

    var appAddresses: [(key: String, value: String)] { Array(Self.allAppAddresses.prefix(backup ? 3 : 2)) }

    let directory: TemporaryDirectory
    let appPort: Int
    let proxyPort: Int
    let method: Inventory.BalancingMethod
    /// Give each app its own X-Served-By name (else both say this machine's host name, and the
    /// verifier must tell them apart by nginx's X-Upstream).
    let namedApps: Bool
    let backup: Bool
    /// Apps that run another release than the stand-in's own (its package.json version).
    let versions: [String: String]
    private let lock = NSLock()
    private var appPIDs: [String: pid_t] = [:]
    private var nginxPID: pid_t?

    static var standinDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("app/wayshub-standin").path
    }

    static var nodePath: String? {
        ["/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var nginxPath: String? {
        ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var canRun: Bool { nodePath != nil && nginxPath != nil }

    init(
        method: Inventory.BalancingMethod = .roundRobin, namedApps: Bool = false, upstreamHeader: Bool = true, backup: Bool = false,
        versions: [String: String] = [:]
    ) throws {
        directory = try TemporaryDirectory(prefix: "labctl-verify")
        self.versions = versions
        self.method = method
        self.namedApps = namedApps
        self.backup = backup
        appPort = try TestSSHServer.freePort()
        proxyPort = try TestSSHServer.freePort()
        do {
            for (name, _) in appAddresses { try startApp(name, wait: true) }
            try startNginx(upstreamHeader: upstreamHeader)
        } catch {
            shutDown()
            throw error
        }
    }

    deinit { shutDown() }

    /// What the inventory says the method is, when it is not what this lab's nginx runs.
    var inventoryMethod: Inventory.BalancingMethod?

    /// `nginx -T` of this lab's nginx.
    func dumpConfig() throws -> LocalResult {
        try runLocal([Self.nginxPath!, "-p", directory.path, "-e", directory.file("nginx-error.log"), "-c", directory.file("nginx.conf"), "-T"], check: false)
    }

    var inventory: Inventory {
        var hosts = [InventoryHost(name: "proxy", address: "127.0.0.1", roles: [Inventory.proxyRole])]
        for (name, address) in appAddresses {
            hosts.append(InventoryHost(name: name, address: address, roles: [Inventory.appRole],
                                       upstream: .init(backup: name == "app3", failTimeout: "2s")))
        }
        return Inventory(
            name: "loopback", domain: Self.domain, hosts: hosts,
            app: .init(name: "wayshub", port: appPort, source: .path(Self.standinDirectory), node: .apt),
            nginx: .init(method: inventoryMethod ?? method, listenPort: proxyPort),
            baseDirectory: directory.url)
    }

    func address(of app: String) -> String { Self.allAppAddresses.first { $0.key == app }!.value }

    func startApp(_ name: String, wait: Bool) throws {
        let address = address(of: name)
        var environment = ["PORT=\(appPort)", "HOST=\(address)"]
        if namedApps { environment.append("STANDIN_SERVER_NAME=\(name)-box") }
        // Another release of the app: a copy whose package.json says `version`.
        var app = Self.standinDirectory
        if let version = versions[name] {
            app = directory.file("app-\(name)")
            try? FileManager.default.removeItem(atPath: app)
            try FileManager.default.copyItem(atPath: Self.standinDirectory, toPath: app)
            let package = try String(contentsOfFile: app + "/package.json", encoding: .utf8)
                .replacingOccurrences(of: #""version": "1.0.0""#, with: #""version": "\#(version)""#)
            try package.write(toFile: app + "/package.json", atomically: true, encoding: .utf8)
        }
        let pid = try spawnBackground(
            ["/usr/bin/env"] + environment + [Self.nodePath!, app + "/server.js"],
            logPath: directory.file("\(name).log"))
        lock.withLock { appPIDs[name] = pid }
        if wait { try waitUntilListening(address: address, port: appPort, pid: pid, log: directory.file("\(name).log")) }
    }

    func stopApp(_ name: String) {
        let pid = lock.withLock { appPIDs.removeValue(forKey: name) }
        if let pid { stopBackground(pid) }
    }

    func isRunning(_ name: String) -> Bool { lock.withLock { appPIDs[name] != nil } }

    func stopNginx() {
        let pid = lock.withLock { () -> pid_t? in defer { nginxPID = nil }; return nginxPID }
        if let pid { stopBackground(pid) }
    }

    func shutDown() {
        stopNginx()
        for name in lock.withLock({ Array(appPIDs.keys) }) { stopApp(name) }
        directory.remove()
    }

    private func startNginx(upstreamHeader: Bool) throws {
        let dir = directory.path
        let servers = appAddresses.map {
            "        server \($0.value):\(appPort) max_fails=1 fail_timeout=2s\($0.key == "app3" ? " backup" : "");"
        }.joined(separator: "\n")
        let methodLine = method == .roundRobin ? "" : "        \(method.rawValue);\n"
        let config = """
            worker_processes 2;
            pid \(dir)/nginx.pid;
            error_log \(dir)/nginx-error.log warn;
            events { worker_connections 512; }
            http {
                access_log off;
                client_body_temp_path \(dir)/body;
                proxy_temp_path \(dir)/proxy;
                fastcgi_temp_path \(dir)/fastcgi;
                uwsgi_temp_path \(dir)/uwsgi;
                scgi_temp_path \(dir)/scgi;
                upstream wayshub_app {
            \(methodLine)\(servers)
                }
                server {
                    listen 127.0.0.1:\(proxyPort);
                    server_name \(Self.domain);
                    location / {
                        proxy_pass http://wayshub_app;
                        proxy_next_upstream error timeout http_502 http_503;
                        # A stopped app refuses at once; a slow connect on a machine busy with
                        # other suites must not count as a failure that takes a live app out.
                        proxy_connect_timeout 5s;
                        proxy_set_header Host $host;
                        \(upstreamHeader ? "add_header X-Upstream $upstream_addr always;" : "")
                    }
                }
                server {
                    listen 127.0.0.1:\(proxyPort) default_server;
                    return 404;
                }
            }

            """
        try config.write(toFile: directory.file("nginx.conf"), atomically: true, encoding: .utf8)
        let log = directory.file("nginx.out")
        let pid = try spawnBackground(
            [Self.nginxPath!, "-p", dir, "-e", "\(dir)/nginx-error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"],
            logPath: log)
        lock.withLock { nginxPID = pid }
        try waitUntilListening(address: "127.0.0.1", port: proxyPort, pid: pid, log: log)
    }

    private func waitUntilListening(address: String, port: Int, pid: pid_t, log: String) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.canConnect(address: address, port: port) { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw FixtureError(message: "the process for \(address):\(port) exited (status \(status)): \(output)")
            }
            usleep(20_000)
        }
        throw FixtureError(message: "nothing listened on \(address):\(port) within 10 s")
    }

    static func canConnect(address: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_addr.s_addr = inet_addr(address)
        socketAddress.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The drill's service control pointed at the loopback lab's processes: stop ends the app's
/// process, start spawns it again (without waiting, like systemctl start).
final class LoopbackServices: ServiceController, @unchecked Sendable {
    let lab: LoopbackLab
    private let lock = NSLock()
    private var calls: [String] = []
    private let onStop: (@Sendable (String) -> Void)?

    init(lab: LoopbackLab, onStop: (@Sendable (String) -> Void)? = nil) {
        self.lab = lab
        self.onStop = onStop
    }

    var log: [String] { lock.withLock { calls } }

    func stop(_ host: InventoryHost) async throws {
        lock.withLock { calls.append("stop \(host.name)") }
        lab.stopApp(host.name)
        onStop?(host.name)
    }

    func start(_ host: InventoryHost) async throws {
        lock.withLock { calls.append("start \(host.name)") }
        if !lab.isRunning(host.name) { try lab.startApp(host.name, wait: false) }
    }
}

/// The proxy's commands answered by this lab's own nginx: the nginx checks without SSH.
final class LocalNginx: HostCommandRunner, @unchecked Sendable {
    let lab: LoopbackLab
    init(lab: LoopbackLab) { self.lab = lab }
    func run(_ command: String, on host: InventoryHost, privileged: Bool, timeout: Duration) async throws -> HostCommandOutput {
        switch command {
        case "systemctl is-active nginx":
            return HostCommandOutput(status: 0, stdout: "active\n", stderr: "")
        case "nginx -T":
            let dump = try lab.dumpConfig()
            return HostCommandOutput(status: dump.status, stdout: dump.stdout, stderr: dump.stderr)
        default:
            throw NoCommands.Refused()
        }
    }
    func close() async {}
}

/// A command runner for runs that must not touch any host over SSH.
struct NoCommands: HostCommandRunner {
    struct Refused: Error {}
    func run(_ command: String, on host: InventoryHost, privileged: Bool, timeout: Duration) async throws -> HostCommandOutput {
        throw Refused()
    }
    func close() async {}
}
