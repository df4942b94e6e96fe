import FleetCore
import Foundation

extension FleetServer {
    /// Runs the hunt planner every second, and at once when poked (a hunt created, a client
    /// connected, a flow finished). Also records flows whose agent never reported back.
    func schedulerLoop() async {
        var iterator = wakeTicks().makeAsyncIterator()
        while await iterator.next() != nil {
            await schedulerPass(now: Date().timeIntervalSince1970)
        }
    }

    private func wakeTicks() -> AsyncStream<Void> {
        AsyncStream { continuation in
            let ticker = Task {
                while !Task.isCancelled {
                    continuation.yield()
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            let forwarder = Task { [self] in
                for await _ in self.wakeEvents { continuation.yield() }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                ticker.cancel()
                forwarder.cancel()
            }
        }
    }

    /// One scheduling decision round: plan, then apply each decision to the datastore and agents.
    func schedulerPass(now: Double) async {
        do {
            let hunts = try await store.hunts().filter { $0.state == .running }
            if !hunts.isEmpty {
                let connected = connectedClientIds
                let clients = try await store.clients().filter { !$0.revoked }.map {
                    PlannerClient(clientId: $0.clientId, labels: $0.labels, os: $0.os, connected: connected.contains($0.clientId))
                }
                var assignments: [PlannerAssignment] = []
                var scheduled = 0, finished = 0
                for hunt in hunts {
                    for flow in try await store.flows(clientId: nil, huntId: hunt.huntId) {
                        assignments.append(PlannerAssignment(huntId: hunt.huntId, clientId: flow.clientId, round: flow.round, scheduledAt: flow.createdAt, state: flow.state))
                        if flow.round == hunt.round {
                            scheduled += 1
                            if flow.state.isFinal { finished += 1 }
                        }
                    }
                }
                metrics.huntClientsScheduled.set(Double(scheduled))
                metrics.huntClientsFinished.set(Double(finished))
                let decisions = HuntPlanner.plan(hunts: hunts, clients: clients, assignments: assignments, now: now)
                try await apply(decisions, hunts: hunts, now: now)
            }
            try await timeOutLostFlows(now: now)
            let counts = try await store.flowCounts()
            metrics.flowsScheduled.set(Double(counts[.scheduled] ?? 0))
            metrics.flowsRunning.set(Double(counts[.running] ?? 0))
        } catch {
            log("scheduler: \(error)")
        }
    }

    private func apply(_ decisions: [PlannerDecision], hunts: [HuntRecord], now: Double) async throws {
        var byId = Dictionary(hunts.map { ($0.huntId, $0) }, uniquingKeysWith: { a, _ in a })
        for decision in decisions {
            switch decision {
            case .startRound(let huntId, let round, let next):
                guard var hunt = byId[huntId] else { continue }
                hunt.round = round
                hunt.roundStartedAt = now
                hunt.nextRoundAt = next
                if hunt.startedAt == nil { hunt.startedAt = now }
                try await store.updateHunt(hunt)
                byId[huntId] = hunt
                log("hunt \(huntId): round \(round) started")
            case .schedule(let huntId, let clientId, let round):
                guard let hunt = byId[huntId] else { continue }
                let flow = FlowRecord(flowId: Identifiers.flow(), clientId: clientId, huntId: huntId, round: round, request: hunt.request, creator: hunt.creator, createdAt: now)
                try await store.addFlow(flow)
                deliver(flow)
            case .expire(let huntId):
                guard var hunt = byId[huntId] else { continue }
                hunt.state = .expired
                try await store.updateHunt(hunt)
                try await cancelUndelivered(huntId: huntId, reason: "hunt expired")
                log("hunt \(huntId) expired")
            }
        }
    }

    /// Flows of a hunt not yet delivered are cancelled (stop, expiry); running ones finish.
    func cancelUndelivered(huntId: String, reason: String) async throws {
        for flow in try await store.flows(clientId: nil, huntId: huntId) where flow.state == .scheduled {
            try await store.updateFlow(flow.flowId, state: .cancelled, startedAt: nil, endedAt: Date().timeIntervalSince1970, errors: [reason])
        }
    }

    /// A running flow whose agent has not reported within its timeout plus the grace period ends
    /// as an error, so no flow (and no hunt) waits forever for a dead agent.
    private func timeOutLostFlows(now: Double) async throws {
        let grace = config.flowGraceSeconds
        for flow in try await store.runningFlows(startedBefore: now - grace) {
            let timeout = flow.request.timeout ?? config.defaultTimeoutSeconds
            guard let started = flow.startedAt, started + timeout + grace < now else { continue }
            let connected = connectedClientIds.contains(flow.clientId)
            try await store.updateFlow(
                flow.flowId, state: .error, startedAt: nil, endedAt: now,
                errors: ["no final status from the agent \(Int(timeout + grace)) s after the collection started (agent \(connected ? "connected" : "not connected"))"])
            log("flow \(flow.flowId) on \(flow.clientId): lost, recorded as error")
        }
    }
}
