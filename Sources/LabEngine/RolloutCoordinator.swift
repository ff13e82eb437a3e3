import LabSpec

/// Where the hosts of one run meet at each rolling group (`Rollout`): the group opens when
/// every host of the run has reached it or ended; hosts that need no turn (nothing to change,
/// or not serving yet) go first, all at once; then hosts that are serving and have something to
/// change take turns, `serial` at a time in inventory order; hosts the group does not name wait
/// until the group is over. A batch with more failures than `maxFail` stops the group: the hosts still
/// waiting for their turn are not started.
actor RolloutCoordinator {
    enum Admission: Sendable, Equatable {
        /// Run the group's steps now; `inTurn` when this is the host's turn in a batch;
        /// `othersServing`: hosts of the group serving meanwhile (not in this batch, not
        /// stopped out of rotation), so that taking this one out leaves the site up.
        case run(inTurn: Bool, othersServing: Int)
        /// The group is over (for a host it does not name).
        case pass
        /// The group stopped before this host's turn.
        case notStarted(String)
        case cancelled
    }

    private struct Group {
        let rollout: Rollout
        /// The hosts it names, in inventory order.
        let participants: [String]
        var waiting: [String: CheckedContinuation<Admission, Never>] = [:]
        var needsTurn: [String: Bool] = [:]
        var serving: Set<String> = []
        var failedInTurn: Set<String> = []
        var opened = false
        var queue: [String] = []
        var running: Set<String> = []
        var runningAtOnce: Set<String> = []
        var batchFailed: [String] = []
        var stopped: String?
        var over = false
    }

    private let hosts: [String]
    private var groups: [Int: Group]
    private var ended: Set<String> = []

    init(hosts: [String], rollouts: [(Rollout, participants: [String])]) {
        self.hosts = hosts
        groups = Dictionary(uniqueKeysWithValues: rollouts.map { ($0.0.id, Group(rollout: $0.0, participants: $0.participants)) })
    }

    func participants(_ id: Int) -> [String] { groups[id]?.participants ?? [] }

    /// Waits for the group to let this host in. `needsTurn` says whether the host has a change
    /// to make while serving (only then does it wait for a batch).
    func arrive(_ id: Int, host: String, needsTurn: Bool, serving: Bool = false) async -> Admission {
        guard groups[id] != nil else { return .pass }
        if Task.isCancelled { return .cancelled }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                groups[id]!.waiting[host] = continuation
                groups[id]!.needsTurn[host] = needsTurn
                if serving { groups[id]!.serving.insert(host) }
                open(id)
            }
        } onCancel: {
            Task { await self.cancel(id, host: host) }
        }
    }

    /// The host is done with the group's steps and handlers (`failed`: it stopped in them).
    func leave(_ id: Int, host: String, failed: Bool) {
        guard var group = groups[id] else { return }
        if group.runningAtOnce.remove(host) != nil {
            // Updated and healthy: it serves while the others take their turns.
            if !failed { group.serving.insert(host) }
        } else if group.running.remove(host) != nil, failed {
            group.batchFailed.append(host)
            group.failedInTurn.insert(host)
        }
        groups[id] = group
        if group.running.isEmpty { nextBatch(id) }
        finishIfOver(id)
    }

    /// The host's run ended: it reaches no further group.
    func ended(_ host: String) {
        ended.insert(host)
        for id in groups.keys.sorted() {
            if groups[id]!.running.contains(host) || groups[id]!.runningAtOnce.contains(host) {
                leave(id, host: host, failed: true)
            }
            open(id)
        }
    }

    private func cancel(_ id: Int, host: String) {
        guard let continuation = groups[id]?.waiting.removeValue(forKey: host) else { return }
        groups[id]!.queue.removeAll { $0 == host }
        continuation.resume(returning: .cancelled)
        ended.insert(host)
        open(id)
    }

    private func open(_ id: Int) {
        guard var group = groups[id], !group.opened else { return }
        let here = Set(group.waiting.keys).union(ended)
        guard hosts.allSatisfy(here.contains) else { return }
        group.opened = true
        for host in group.participants where group.waiting[host] != nil {
            if group.needsTurn[host] == true {
                group.queue.append(host)
            } else {
                group.runningAtOnce.insert(host)
                group.waiting.removeValue(forKey: host)!.resume(returning: .run(inTurn: false, othersServing: 0))
            }
        }
        groups[id] = group
        nextBatch(id)
        finishIfOver(id)
    }

    /// Batches begin once the hosts that went at once are done: one brought up meanwhile (not
    /// serving before, a first deploy or a crashed app) then serves during the others' turns.
    private func nextBatch(_ id: Int) {
        guard var group = groups[id], group.opened, group.running.isEmpty, group.runningAtOnce.isEmpty else { return }
        if group.batchFailed.count > group.rollout.maxFail, group.stopped == nil {
            let failed = group.batchFailed.joined(separator: ", ")
            group.stopped = "the rollout of '\(group.rollout.name)' stopped after \(failed) failed"
            for host in group.queue {
                group.waiting.removeValue(forKey: host)?.resume(returning: .notStarted(group.stopped!))
            }
            group.queue = []
        }
        group.batchFailed = []
        let batch = group.queue.prefix(group.rollout.serial)
        group.queue.removeFirst(batch.count)
        let others = group.serving.subtracting(batch).subtracting(group.failedInTurn).count
        for host in batch {
            group.running.insert(host)
            group.waiting.removeValue(forKey: host)?.resume(returning: .run(inTurn: true, othersServing: others))
        }
        groups[id] = group
    }

    private func finishIfOver(_ id: Int) {
        guard var group = groups[id], group.opened, !group.over, group.queue.isEmpty, group.running.isEmpty,
            group.runningAtOnce.isEmpty
        else { return }
        group.over = true
        for (_, continuation) in group.waiting { continuation.resume(returning: .pass) }
        group.waiting = [:]
        groups[id] = group
    }
}
