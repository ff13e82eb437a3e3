import SSH
import Testing
@testable import LabEngine

/// The status line's text from the runner's events, at chosen instants.
@Suite struct RunningStepsTests {
    let start = ContinuousClock.now

    func result(_ name: String) -> StepResult {
        StepResult(name: name, type: "command", status: .changed, seconds: 1)
    }

    @Test func aQuickRunDrawsNothing() {
        var steps = RunningSteps()
        steps.record(.stepStarted(host: "app1", step: "npm install", handler: false), at: start)
        #expect(steps.line(now: start + .milliseconds(900), width: 80, frame: 0) == nil)
        #expect(steps.line(now: start + .seconds(1), width: 80, frame: 0) == "⠋ app1: npm install 1s")
    }

    @Test func busyHostsAreListedLongestRunningFirstUntilTheirStepEnds() {
        var steps = RunningSteps()
        steps.record(.stepStarted(host: "proxy", step: "nginx installed", handler: false), at: start + .seconds(2))
        steps.record(.stepStarted(host: "app2", step: "npm install", handler: false), at: start)
        steps.record(.stepStarted(host: "app1", step: "npm install", handler: false), at: start)
        steps.record(.stepStarted(host: "web", step: "reload nginx", handler: true), at: start + .seconds(3))
        let now = start + .milliseconds(12_500)
        #expect(steps.line(now: now, width: 200, frame: 3)
            == "⠸ app1: npm install 12s · app2: npm install 12s · proxy: nginx installed 10s · web: handler: reload nginx 9s")
        let changes = [
            steps.record(.stepFinished(host: "app1", result: result("npm install")), at: now),
            steps.record(.unreachable(host: "web", message: "gone"), at: now),
            steps.record(.connected(host: "proxy", seconds: 0.1), at: now),
            steps.record(.output(host: "app2", step: "npm install", line: OutputLine(stream: .stdout, text: "added 1")), at: now),
            steps.record(.unreachable(host: "web", message: "gone"), at: now),
        ]
        // Only what changes the line asks for a redraw: not a connection, an output line, or
        // news of a host that was no longer busy.
        #expect(changes == [true, true, false, false, false])
        #expect(steps.line(now: now, width: 200, frame: 13) == "⠸ app2: npm install 12s · proxy: nginx installed 10s")
        steps.record(.stepFinished(host: "app2", result: result("npm install")), at: now)
        steps.record(.stepFinished(host: "proxy", result: result("nginx installed")), at: now)
        #expect(steps.isEmpty)
        #expect(steps.line(now: now, width: 200, frame: 0) == nil)
    }

    @Test func aLongLineIsCutToTheTerminalWidth() throws {
        var steps = RunningSteps()
        for index in 1...30 {
            steps.record(.stepStarted(host: "app\(index)", step: "Node.js from the distribution", handler: false), at: start)
        }
        let line = try #require(steps.line(now: start + .seconds(95), width: 60, frame: 0))
        #expect(line.count == 60)
        #expect(line.hasPrefix("⠋ app1: Node.js from the distribution 95s · app10: "))
        #expect(line.hasSuffix("…"))
    }
}
