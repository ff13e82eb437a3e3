import Foundation
@testable import LabVerify
import Testing
import TestSupport

struct HTTPProbeTests {
    /// A socket that listens and never accepts: the kernel completes the connection, nobody answers.
    final class SilentServer {
        let fd: Int32
        let port: Int

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard bound else {
                close(fd)
                throw FixtureError(message: "could not listen: errno \(errno)")
            }
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(fd) }
    }

    @Test("a server that never answers: the request ends at its deadline and says so")
    func deadline() async throws {
        let server = try SilentServer()
        let client = HTTPProber.makeClient(timeout: .milliseconds(400))
        let prober = HTTPProber(client: client, timeout: .milliseconds(400))
        let probe = await prober.get(address: "127.0.0.1", port: server.port)
        try? await client.shutdown()
        #expect(probe.status == nil)
        #expect(probe.error == "no response within 400 ms")
        // The prober's own deadline ended it (its message), not a default of the client's;
        // no wall-clock bound here: timings are measured in bench/, never asserted in tests.
        #expect(!probe.succeeded)
    }

    @Test("a closed port is refused at once, without the client's connection retries")
    func refused() async throws {
        let port = try TestSSHServer.freePort()
        let client = HTTPProber.makeClient(timeout: .seconds(10))
        let probe = await HTTPProber(client: client, timeout: .seconds(10)).get(address: "127.0.0.1", port: port)
        try? await client.shutdown()
        #expect(probe.error == "connection refused")
        // Reported as refused, not as the connect timeout that retries would end in.
        #expect(probe.outcome == "connection refused")
    }

    @Test("IPv6 addresses go in brackets in the URL")
    func ipv6URL() {
        #expect(HTTPProber.urlHost("fd00::1") == "[fd00::1]")
        #expect(HTTPProber.urlHost("198.18.42.10") == "198.18.42.10")
        #expect(HTTPProber.urlHost("[fd00::1]") == "[fd00::1]")
    }
}
