import Foundation
import LabSpec
import SSH

/// A rolling group on one host: wait for the turn, leave the load balancer's rotation, run the
/// group's steps and the handlers they notify, come back into rotation.
extension HostRun {
    func roll(_ parts: [[Entry]], in rollout: Rollout, state: inout State) async throws(Stop) {
        // `looked`: what the host was found to be before its turn; only the steps before the
        // first flush_handlers can use it (on this host nothing changes in between).
        func steps(_ state: inout State, looked: [Int: Facts]? = nil) async throws(Stop) {
            for (index, part) in parts.enumerated() {
                try await execute(part, state: &state, looked: index == 0 ? looked : nil)
                try await runHandlers(state: &state)
            }
        }
        guard let coordinator else { return try await steps(&state) }
        let entries = parts.flatMap { $0 }
        let named = await coordinator.participants(rollout.id)
        let participant = named.contains(host)
        var needsTurn = false
        var serving = false
        var looked: [Int: Facts]?
        if participant {
            if rollout.rotation == nil {
                needsTurn = true
            } else {
                let (work, inService, facts) = try await workAndService(entries, rollout: rollout, state: &state)
                needsTurn = work && inService
                serving = inService
                looked = facts
            }
        }
        switch await coordinator.arrive(rollout.id, host: host, needsTurn: needsTurn, serving: serving) {
        case .pass:
            return
        case .cancelled:
            throw .cancelled
        case .notStarted(let why):
            throw .notStarted("not started: \(why)")
        case .run(let inTurn, let othersServing):
            // Taking out the last server in service would take the site down for nothing: it
            // is updated in rotation, and the report says the site is down meanwhile.
            let takeOut = inTurn && rollout.rotation != nil && !runner.options.check && othersServing > 0
            if inTurn, rollout.rotation != nil, othersServing == 0 {
                let inInventory = PlaybookValidator.targets(of: rollout.hosts, in: runner.targets.map(\.facts)).count
                let why =
                    inInventory > named.count
                    ? "the group's other hosts are not in this run (--limit), so none is known to be serving"
                    : named.count == 1 ? "\(host) is the only host of the group" : "no other host of the group is serving now"
                state.record(
                    StepResult(
                        name: "\(rollout.name): \(host) stays in rotation", type: "rotation", status: .skipped, handler: false,
                        message: "\(why), so nothing can serve while it is updated: the site is down until it is back"),
                    progress: progress, host: host)
            }
            let started = Date()
            let startSecond = (ContinuousClock.now - runStarted).seconds
            func turn() -> RollingTurn {
                RollingTurn(
                    group: rollout.name, inTurn: inTurn, takenOut: takeOut, startedAt: started, endedAt: Date(),
                    startSecond: (startSecond * 1000).rounded() / 1000, endSecond: ((ContinuousClock.now - runStarted).seconds * 1000).rounded() / 1000)
            }
            do throws(Stop) {
                if takeOut { try await rotate(rollout, out: true, state: &state) }
                try await steps(&state, looked: looked)
                if takeOut { try await rotate(rollout, out: false, state: &state) }
            } catch {
                state.turns.append(turn())
                await coordinator.leave(rollout.id, host: host, failed: true)
                throw error
            }
            state.turns.append(turn())
            await coordinator.leave(rollout.id, host: host, failed: false)
        }
    }

    /// The probe id of the `serving` question: no step has it.
    static let servingProbeID = Int.min

    /// Whether the group has something to change here (a step whose plan changes something, or
    /// a handler owed), and whether the host is in service (`serving` succeeds, or there is none):
    /// one probe asks both, and its facts are handed on so the group's first steps are not
    /// looked at twice.
    func workAndService(_ entries: [Entry], rollout: Rollout, state: inout State) async throws(Stop)
        -> (work: Bool, serving: Bool, facts: [Int: Facts])
    {
        var asked = entries.filter { $0.operation != nil }
        if let serving = rollout.rotation?.steps(of: rollout).serving,
            let command = try compile(serving, state: &state) as? CommandOperation
        {
            // Asked as a guard, which the probe runs and reports on (unless=ok: it succeeded).
            asked.append(Entry(id: Self.servingProbeID, step: serving, handler: false, operation: CommandOperation(run: ":", unless: command.run)))
        }
        let facts = asked.isEmpty ? [:] : try await probe(asked[...], state: &state, readPending: !state.pendingRead)
        var work = !state.notified.isEmpty || !state.recorded.isEmpty
        for entry in asked where !work && entry.id != Self.servingProbeID {
            guard let operation = entry.operation, let found = facts[entry.id] else { work = true; break }
            do {
                let plan = try operation.plan(found)
                work = !plan.isEmpty && plan.changes
            } catch {
                work = true
            }
        }
        let serving = asked.last?.id != Self.servingProbeID || facts[Self.servingProbeID]?["unless"] == "ok"
        var stepFacts = facts
        stepFacts[Self.servingProbeID] = nil
        return (work, serving, stepFacts)
    }

    /// Runs the rotation's take_out (or put_back) on each of its `via` hosts, rendered with this
    /// host's variables, as a step of this host's report.
    func rotate(_ rollout: Rollout, out: Bool, state: inout State) async throws(Stop) {
        guard let rotation = rollout.rotation else { return }
        let commands = rotation.steps(of: rollout)
        var step = out ? commands.takeOut : commands.putBack
        let vias = PlaybookValidator.targets(of: rotation.via, in: runner.targets.map(\.facts)).compactMap { facts in
            runner.targets.first { $0.name == facts.name }
        }
        for via in vias {
            step.name = out ? "take \(host) out of rotation on \(via.name)" : "put \(host) back in rotation on \(via.name)"
            let operation = try compile(step, state: &state)
            let session: any HostSession
            if let open = state.delegates[via.name] {
                session = open
            } else {
                do {
                    session = try await runner.connector(via)
                } catch {
                    let message = "\(step.name): \(via.name) could not be reached: \(error.summary)"
                    state.record(StepResult(name: step.name, type: "rotation", status: .failed, handler: false, message: message), progress: progress, host: host)
                    throw .failed(message)
                }
                state.delegates[via.name] = session
            }
            // The via host's own run holds its lock and reads its records: this is only a
            // command there, on a session of this host's.
            let viaRun = HostRun(target: via, runner: runner, playbook: playbook, steps: [], progress: progress)
            var viaState = State(session: session)
            viaState.pendingRead = true
            defer {
                state.results += viaState.results
                state.roundTrips += viaState.roundTrips
            }
            // Out from the moment the command was sent: a take_out cut half-way may have acted.
            if out, !state.outOfRotation.contains(via.name) { state.outOfRotation.append(via.name) }
            try await viaRun.execute([Entry(id: 0, step: step, handler: false, operation: operation)], state: &viaState)
            if !out { state.outOfRotation.removeAll { $0 == via.name } }
        }
    }
}
