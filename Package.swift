// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "labctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "labctl", targets: ["labctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/onevcat/Rainbow", from: "4.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // The system libssh2 (Debian: libssh2-1-dev). The shim also exposes libcrypto's SHA-256
        // (libssh2 links OpenSSL already): SSH.SHA256Digest, for fingerprints and file digests.
        .systemLibrary(
            name: "CLibSSH2",
            pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"])]
        ),
        // The Swift face of libssh2: sessions, auth, known_hosts, exec, upload. Nothing lab-specific.
        .target(name: "SSH", dependencies: ["CLibSSH2"]),
        // Plain text for terminals: the one table renderer and word wrapping.
        .target(name: "TextLayout"),
        // inventory.json (and later playbooks) as value types, loading and validation.
        // (SSH for the one host-key policy type that the inventory names and the executor applies.)
        .target(name: "LabSpec", dependencies: ["SSH", "Yams"]),
        // Steps, templates, planning (probe -> diff), the parallel runner, the recap.
        .target(
            name: "LabEngine",
            dependencies: [
                "LabSpec", "SSH", "TextLayout", "Yams",
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // The local lab: rootfs cache, overlays, network namespaces, nspawn hosts.
        .target(
            name: "LabLocal",
            dependencies: ["SSH", "LabSpec", .product(name: "Subprocess", package: "swift-subprocess")]
        ),
        // labctl verify: HTTP checks through the proxy, load balancing, the failover drill, reports.
        .target(
            name: "LabVerify",
            dependencies: [
                "LabSpec", "SSH", "LabEngine", "TextLayout",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // The executable: argument parsing and output only.
        .executableTarget(
            name: "labctl",
            dependencies: [
                "SSH", "LabSpec", "LabEngine", "LabLocal", "LabVerify", "TextLayout",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "Rainbow",
            ]
        ),
        // Shared by the test targets: a private OpenSSH sshd on loopback, key making, the built labctl.
        .target(name: "TestSupport", dependencies: ["SSH"], path: "Tests/TestSupport"),
        // `swift run -c release ssh-bench`: the SSH executor beside OpenSSH with ControlMaster.
        .executableTarget(name: "ssh-bench", dependencies: ["SSH", "TestSupport"], path: "bench/SSHBench"),
        // `make bench-big`: a 10,000-step playbook parsed, checked and run on one host, timed.
        .executableTarget(
            name: "big-playbook-bench", dependencies: ["LabEngine", "LabSpec", "SSH", "TestSupport"],
            path: "bench/BigPlaybookBench"),
        // `make bench-plan`: planning alone (check and compile every step for every host) at 10 to 1,000 hosts.
        .executableTarget(name: "planning-bench", dependencies: ["LabEngine", "LabSpec", "SSH"], path: "bench/PlanningBench"),
        .testTarget(name: "SSHTests", dependencies: ["SSH", "TestSupport"]),
        .testTarget(name: "LabSpecTests", dependencies: ["LabSpec", "SSH"]),
        .testTarget(name: "LabEngineTests", dependencies: ["LabEngine", "SSH", "TestSupport"]),
        .testTarget(name: "TextLayoutTests", dependencies: ["TextLayout"]),
        .testTarget(name: "LabLocalTests", dependencies: ["LabLocal", "LabSpec", "SSH", "TestSupport"]),
        .testTarget(name: "LabVerifyTests", dependencies: ["LabVerify", "TestSupport"]),
        .testTarget(name: "LabctlTests", dependencies: ["labctl", "LabEngine", "SSH", "TestSupport"]),
    ]
)
