import Foundation
import LabSpec
import SSH

/// A rolling group on one host: wait for the turn, leave the load balancer's rotation, run the
/// group's steps and the handlers they notify, come back into rotation.
extension HostRun {
    func roll(_ entries: [Entry], in rollout: Rollout, state: inout State) async throws(Stop) {
        guard let coordinator else {
            try await execute(entries, state: &state)
            try await runHandlers(state: &state)
            return
        }
        let named = await coordinator.participants(rollout.id)
        let participant = named.contains(host)
        var needsTurn = false
        if participant {
            needsTurn = rollout.rotation == nil ? true : try await hasWorkWhileServing(entries, rollout: rollout, state: &state)
        }
        switch await coordinator.arrive(rollout.id, host: host, needsTurn: needsTurn) {
        case .pass:
            return
        case .cancelled:
            throw .cancelled
        case .notStarted(let why):
            throw .notStarted("not started: \(why)")
        case .run(let inTurn):
            // Taking the only server out of rotation would take the site down for nothing.
            let takeOut = inTurn && rollout.rotation != nil && !runner.options.check && named.count > 1
            if inTurn, rollout.rotation != nil, named.count == 1 {
                state.record(
                    StepResult(
                        name: "\(rollout.name): \(host) stays in rotation", type: "rotation", status: .skipped, handler: false,
                        message: "\(host) is the only host of the group, so nothing can serve while it is updated: the site is down until it is back"),
                    progress: progress, host: host)
            }
            let started = Date()
            func turn() -> RollingTurn { RollingTurn(group: rollout.name, inTurn: inTurn, takenOut: takeOut, startedAt: started, endedAt: Date()) }
            do throws(Stop) {
                if takeOut { try await rotate(rollout, out: true, state: &state) }
                try await execute(entries, state: &state)
                try await runHandlers(state: &state)
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

    /// Whether the group has something to change here (a step whose plan changes something, or
    /// a handler owed) while the host is in service (`serving` succeeds, or there is none).
    func hasWorkWhileServing(_ entries: [Entry], rollout: Rollout, state: inout State) async throws(Stop) -> Bool {
        let active = entries.filter { $0.operation != nil }
        var work = !state.notified.isEmpty
        if !active.isEmpty {
            let facts = try await probe(active[...], state: &state, readPending: !state.pendingRead)
            work = work || !state.recorded.isEmpty
            for entry in active where !work {
                guard let operation = entry.operation, let found = facts[entry.id] else { work = true; break }
                do {
                    let plan = try operation.plan(found)
                    work = !plan.isEmpty && plan.changes
                } catch {
                    work = true
                }
            }
        }
        guard work, let serving = rollout.rotation?.steps(of: rollout).serving else { return work }
        let operation = try compile(serving, state: &state)
        guard let command = operation as? CommandOperation else { return work }
        state.roundTrips += 1
        do {
            let result = try await Self.finishing(
                RemoteCommand(arguments: ["sh", "-c", command.invocation(command.run)], timeout: .seconds(60), become: becomeFor(serving)),
                on: state.session, onLine: nil)
            return result.succeeded
        } catch {
            if error.connectionLost { throw .unreachable("\(serving.name): \(error.summary)") }
            throw .failed("\(serving.name): \(error.summary)")
        }
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
