import Foundation

/// Every request through the proxy during the drill and every server taken down and back,
/// timed from the drill's start: what the report's timeline is made of. Requests come from the
/// drill's own batches and from the load generator's tasks at once, hence the lock.
final class DrillRecorder: @unchecked Sendable {
    private struct Answer {
        var at: Double
        /// The app server that answered; nil for an error or an answer no server matched.
        var server: String?
        /// nil: the request failed.
        var milliseconds: Double?
    }

    private let lock = NSLock()
    /// Seconds since the drill began; a parameter so that tests set the time instead of
    /// sleeping (a sleep on a loaded machine can last far longer than asked).
    private let secondsSinceStart: @Sendable () -> Double
    private var answers: [Answer] = []
    private var events: [DrillEvent] = []

    init() {
        let clock = ContinuousClock()
        let start = clock.now
        secondsSinceStart = { (clock.now - start).seconds }
    }

    init(secondsSinceStart: @escaping @Sendable () -> Double) {
        self.secondsSinceStart = secondsSinceStart
    }

    private var now: Double { secondsSinceStart() }

    /// A request answered now: `milliseconds` nil for a failure; `server` nil when the answer
    /// was the app's page but no server could be told.
    func request(server: String?, milliseconds: Double?) {
        let at = now
        lock.withLock { answers.append(Answer(at: at, server: server, milliseconds: milliseconds)) }
    }

    func event(_ kind: DrillEvent.Kind, server: String, how: String) {
        let at = now
        lock.withLock { events.append(DrillEvent(at: at, server: server, kind: kind, how: how)) }
    }

    /// One-second buckets from the drill's start to now, empty seconds included.
    func timeline(servers: [String]) -> DrillTimeline {
        let end = now
        return lock.withLock {
            let count = max(1, Int(end.rounded(.up)))
            var grouped = [[Answer]](repeating: [], count: count)
            for answer in answers {
                grouped[min(count - 1, max(0, Int(answer.at)))].append(answer)
            }
            let buckets = grouped.enumerated().map { second, answers in
                var answered: [String: Int] = [:]
                var errors = 0
                var latencies: [Double] = []
                for answer in answers {
                    guard let milliseconds = answer.milliseconds else {
                        errors += 1
                        continue
                    }
                    latencies.append(milliseconds)
                    answered[answer.server ?? "unknown", default: 0] += 1
                }
                latencies.sort()
                return TimelineBucket(
                    start: Double(second), answered: answered, errors: errors,
                    p50: Percentile.nearestRank(50, ofSorted: latencies), p99: Percentile.nearestRank(99, ofSorted: latencies))
            }
            return DrillTimeline(bucketSeconds: 1, servers: servers, buckets: buckets, events: events.sorted { $0.at < $1.at })
        }
    }
}
