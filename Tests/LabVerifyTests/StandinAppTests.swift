import Foundation
@testable import LabVerify
import Testing
import TestSupport

/// The stand-in app (app/wayshub-standin) run by the node of this machine.
@Suite(.enabled(if: LoopbackLab.nodePath != nil, "needs node (Debian: nodejs)"))
struct StandinAppTests {
    @Test("every GET gets the WaysHub page naming this host, /health answers ok, SIGTERM ends it with status 0")
    func pageHealthAndStop() async throws {
        let folder = try TemporaryDirectory(prefix: "labctl-standin")
        defer { folder.remove() }
        let port = try TestSSHServer.freePort()
        let log = folder.file("app.log")
        let pid = try spawnBackground(
            ["/usr/bin/env", "PORT=\(port)", LoopbackLab.nodePath!, LoopbackLab.standinDirectory + "/server.js"], logPath: log)
        var reaped = false
        defer { if !reaped { stopBackground(pid) } }
        var page = await getOnce("127.0.0.1", port)
        for _ in 0..<100 where page.status == nil {
            try await Task.sleep(for: .milliseconds(50))
            page = await getOnce("127.0.0.1", port)
        }
        let hostname = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        let localName = try runLocal(["hostname"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(page.status == 200)
        #expect(page.servedBy == localName || page.servedBy == hostname)
        #expect(PageText.title(of: page.body) == "WaysHub")
        #expect(page.body.contains(localName))

        let deep = await getOnce("127.0.0.1", port, path: "/watch/42?x=1")
        #expect(deep.status == 200)
        #expect(deep.body == page.body)

        let health = await getOnce("127.0.0.1", port, path: "/health")
        #expect(health.status == 200)
        #expect(health.body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
        #expect(health.servedBy == page.servedBy)

        #expect(kill(pid, SIGTERM) == 0)
        var status: Int32 = -1
        for _ in 0..<300 {
            if waitpid(pid, &status, WNOHANG) == pid { reaped = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(reaped, "the app did not end within 3 s of SIGTERM")
        #expect(reaped && (status & 0x7f) == 0 && (status >> 8) & 0xff == 0, "exit status \(status)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        // One line at start-up and one at the stop, none per request.
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.first?.contains("listening on *:\(port)") == true)
    }

    @Test("package.json: named wayshub, npm start runs server.js, no dependencies")
    func packageJSON() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: LoopbackLab.standinDirectory + "/package.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["name"] as? String == "wayshub")
        #expect((object["scripts"] as? [String: String])?["start"] == "node server.js")
        #expect(object["dependencies"] == nil)
        #expect(object["devDependencies"] == nil)
    }
}
