import FleetCore
import Foundation

extension FleetServer {
    /// Stores a run of event batches from one agent (one transaction), acknowledges each, and hands
    /// the stored rows to live readers. An event stream carries only rows of its own artifact; any
    /// other payload is rejected. A failure acknowledges nothing: the agent sends the batches again.
    func ingestEvents(_ wire: [WireBatch], from clientId: String, socket: AgentSocket) async {
        let now = Date().timeIntervalSince1970
        var batches: [EventBatch] = []
        var bytes = 0
        var listed = await monitoredArtifacts(now: now, fresh: false)
        for batch in wire {
            guard case .rows(let artifact, let source, let rows) = batch.payload, EventStream.artifact(of: batch.flowId) == artifact else {
                await reject(batch.flowId, seq: batch.seq, reason: "an event stream carries only rows of its own artifact", clientId: clientId, socket: socket)
                continue
            }
            // A client sends events only for what the table asks of it: an artifact never listed
            // (or removed more than an hour ago, past any queue the agent still drains) is refused,
            // so a client cannot fill the event store under names of its own choosing.
            // Before refusing, read the table again: it may have just changed on another frontend.
            if artifact != AlertEvents.artifact && !listed.contains(artifact) { listed = await monitoredArtifacts(now: now, fresh: true) }
            guard artifact == AlertEvents.artifact || listed.contains(artifact) else {
                await reject(batch.flowId, seq: batch.seq, reason: "\(artifact) is not in the monitoring table", clientId: clientId, socket: socket)
                continue
            }
            bytes += rows.reduce(0) { $0 + $1.utf8.count }
            batches.append(EventBatch(clientId: clientId, artifact: artifact, source: source, seq: batch.seq, rows: rows, receivedAt: now))
        }
        if batches.isEmpty { return }
        let outcomes: [IngestOutcome]
        do {
            outcomes = try await store.ingestEvents(batches)
        } catch {
            log("agent \(clientId): storing \(batches.count) event batches failed: \(error)")
            return
        }
        metrics.bytesIngested.increment(by: Int64(bytes))
        var stored: [EventRow] = []
        for (batch, outcome) in zip(batches, outcomes) {
            let stream = EventStream.id(artifact: batch.artifact)
            switch outcome {
            case .stored:
                metrics.batchesIngested.increment()
                metrics.rowsIngested.increment(by: Int64(batch.rows.count))
                if batch.artifact == AlertEvents.artifact {
                    for alert in AlertEvents.alerts(in: batch.rows, clientId: clientId) { await record(alert) }
                }
                for (index, row) in batch.rows.enumerated() {
                    stored.append(EventRow(clientId: clientId, artifact: batch.artifact, source: batch.source, time: now, seq: batch.seq, index: index, json: row))
                }
                socket.send(ServerMessage.ack(flowId: stream, seq: batch.seq, rejected: nil))
            case .duplicate:
                metrics.duplicateBatches.increment()
                socket.send(ServerMessage.ack(flowId: stream, seq: batch.seq, rejected: nil))
            case .rejected(let reason):
                await reject(stream, seq: batch.seq, reason: reason, clientId: clientId, socket: socket)
            }
        }
        eventReaders.publish(stored)
    }

    /// Artifacts of the client monitoring table, and those removed within the last hour (read from
    /// the store at most every 5 s unless `fresh`).
    func monitoredArtifacts(now: Double, fresh: Bool) async -> Set<String> {
        if !fresh, let cached = monitoredCache.withLockedValue({ now - $0.read < 5 ? $0 : nil }) {
            return cached.listed.union(cached.removed.keys)
        }
        guard let table = try? await store.monitoringTable() else {
            return monitoredCache.withLockedValue { $0.listed.union($0.removed.keys) }
        }
        let listed = Set(table.map(\.artifact))
        return monitoredCache.withLockedValue { cache in
            for gone in cache.listed.subtracting(listed) { cache.removed[gone] = now }
            cache.removed = cache.removed.filter { now - $0.value < 3600 && !listed.contains($0.key) }
            cache.listed = listed
            cache.read = now
            return listed.union(cache.removed.keys)
        }
    }

    /// Sends a client the entries of the monitoring table that apply to it (by its labels).
    func pushMonitoring(to clientId: String, socket: AgentSocket? = nil, table known: [MonitoringEntry]? = nil) async {
        guard let socket = socket ?? links.withLockedValue({ $0[clientId] }) else { return }
        do {
            let table: [MonitoringEntry]
            if let known { table = known } else { table = try await store.monitoringTable() }
            let labels = try await store.client(clientId)?.labels ?? []
            let entries = MonitoringEntry.applicable(table, labels: labels)
            socket.send(ServerMessage.monitoring(entries: entries, definitions: definitions(for: entries.map(\.artifact))))
        } catch {
            log("monitoring table for \(clientId): \(error)")
        }
    }

    /// Pushes the table to every connected agent when it changed since the last push (on this or
    /// another frontend); called by the scheduler every pass.
    func pushMonitoringIfChanged() async throws {
        let table = try await store.monitoringTable()
        let changed = pushedMonitoring.withLockedValue { pushed -> Bool in
            defer { pushed = table }
            return pushed != nil && pushed != table
        }
        guard changed else { return }
        for clientId in connectedClientIds.sorted() { await pushMonitoring(to: clientId, table: table) }
    }

    /// Deletes event rows older than `event_retention_days` (whole UTC days).
    func applyEventRetention(now: Double) async throws {
        let cutoff = EventBatch.day(now) - config.eventRetentionDays + 1
        let deleted = try await store.deleteEvents(beforeDay: cutoff)
        if deleted > 0 { log("event retention: deleted \(deleted) event rows older than \(config.eventRetentionDays) days") }
    }
}
