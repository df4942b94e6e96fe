import FleetCore
import Foundation

extension FleetServer {
    /// Runs the hunt planner every second, and at once when poked (a hunt created, a client
    /// connected, a flow finished). Also records flows whose agent never reported back. Several
    /// frontends may run this loop on one datastore: each plans only for the clients connected to
    /// it, and the datastore makes each decision once (`FleetCoordination`).
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

    /// One scheduling round: plan, then apply each decision to the datastore and agents.
    func schedulerPass(now: Double) async {
        do {
            let connected = connectedClientIds
            let hunts = try await store.hunts().filter { $0.state == .running }
            // The client table is read when hunts need it, and every tenth pass to drop revoked clients.
            let pass = schedulerPasses.withLockedValue { count -> Int in
                count += 1
                return count
            }
            var records: [ClientRecord] = []
            if !hunts.isEmpty || pass % 10 == 0 {
                records = try await store.clients()
                closeRevoked(records, connected: connected)
            }
            try await pushMonitoringIfChanged()
            await refreshServerMonitoring()
            if pass % 3600 == 1 { try await applyEventRetention(now: now) }
            if !hunts.isEmpty {
                let clients = records.filter { !$0.revoked }.map {
                    PlannerClient(clientId: $0.clientId, labels: $0.labels, os: $0.os, connected: connected.contains($0.clientId))
                }
                var assignments: [PlannerAssignment] = []
                var scheduled = 0, finished = 0
                for hunt in hunts {
                    for flow in try await store.huntAssignments(hunt.huntId) {
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

    /// A client revoked through any frontend loses its channel here too.
    private func closeRevoked(_ records: [ClientRecord], connected: Set<String>) {
        for record in records where record.revoked && connected.contains(record.clientId) {
            links.withLockedValue { $0[record.clientId] }?.close()
        }
    }

    private func apply(_ decisions: [PlannerDecision], hunts: [HuntRecord], now: Double) async throws {
        var byId = Dictionary(hunts.map { ($0.huntId, $0) }, uniquingKeysWith: { a, _ in a })
        var lostRace = Set<String>()
        var fanOut: [String: [FlowRecord]] = [:]
        for decision in decisions {
            switch decision {
            case .startRound(let huntId, let round, let next):
                guard var hunt = byId[huntId] else { continue }
                let from = hunt.round
                hunt.round = round
                hunt.roundStartedAt = now
                hunt.nextRoundAt = next
                if hunt.startedAt == nil { hunt.startedAt = now }
                if try await store.advanceHunt(hunt, fromRound: from) {
                    byId[huntId] = hunt
                    log("hunt \(huntId): round \(round) started")
                } else {
                    // Another frontend started this round first; plan again next pass.
                    lostRace.insert(huntId)
                }
            case .schedule(let huntId, let clientId, let round):
                guard !lostRace.contains(huntId), let hunt = byId[huntId] else { continue }
                fanOut[huntId, default: []].append(
                    FlowRecord(flowId: Identifiers.flow(), clientId: clientId, huntId: huntId, round: round, request: hunt.request, creator: hunt.creator, createdAt: now))
            case .expire(let huntId):
                guard var hunt = try await store.hunt(huntId), hunt.state == .running else { continue }
                hunt.state = .expired
                try await store.updateHunt(hunt)
                try await cancelUndelivered(huntId: huntId, reason: "hunt expired")
                log("hunt \(huntId) expired")
            }
        }
        for (huntId, flows) in fanOut {
            guard let hunt = byId[huntId] else { continue }
            let added = try await store.addHuntFlows(flows, clientLimit: hunt.clientLimit, ratePerMinute: hunt.ratePerMinute, now: now)
            let definitions = definitions(for: hunt.request.artifacts)
            for flow in added { deliver(flow, definitions: definitions) }
        }
    }

    /// Flows of a hunt not yet delivered are cancelled (stop, expiry); running ones finish.
    func cancelUndelivered(huntId: String, reason: String) async throws {
        for flow in try await store.huntAssignments(huntId) where flow.state == .scheduled {
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
            blobs.discard(flowId: flow.flowId)
            log("flow \(flow.flowId) on \(flow.clientId): lost, recorded as error")
        }
    }

    /// Work another frontend created for clients connected here: flows to deliver and flows to
    /// cancel, polled twice a second (a flow created anywhere reaches its agent within a second).
    func deliveryLoop() async {
        var since = Date().timeIntervalSince1970 - 60
        var sentCancels = Set<String>()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            let now = Date().timeIntervalSince1970
            do {
                let connected = connectedClientIds
                for flow in try await store.scheduledFlows(createdAfter: since) where connected.contains(flow.clientId) && !flow.cancelRequested {
                    if recentlyDelivered(flow.flowId, now: now) { continue }
                    deliver(flow)
                }
                // Overlap the window: a flow committed late by another frontend is still seen.
                since = now - 10
                for flow in try await store.pendingCancellations() where connected.contains(flow.clientId) && !sentCancels.contains(flow.flowId) {
                    sentCancels.insert(flow.flowId)
                    sendCancel(flow)
                }
            } catch {
                log("delivery: \(error)")
            }
        }
    }
}
