import FleetCore
import Foundation

extension FleetServer {
    /// Stores a run of batches from one agent in one datastore transaction, then acknowledges each.
    /// The client ID comes from the connection's certificate: a batch naming another client's flow
    /// is rejected by the datastore, recorded in the audit log, and acknowledged as rejected.
    func ingest(_ wire: [WireBatch], from clientId: String, socket: AgentSocket) async {
        var batches: [IngestBatch] = []
        var bytes = 0
        for batch in wire {
            let payload: IngestBatch.Payload
            switch batch.payload {
            case .rows(let artifact, let source, let rows):
                payload = .rows(artifact: artifact, source: source, rows: rows)
                bytes += rows.reduce(0) { $0 + $1.utf8.count }
            case .log(let lines): payload = .log(lines)
            case .status(let status): payload = .status(status)
            case .uploadPart(_, _, _, let data, _, _, _, _):
                bytes += data.count
                payload = await uploadPart(batch, clientId: clientId)
            }
            batches.append(IngestBatch(clientId: clientId, flowId: batch.flowId, seq: batch.seq, payload: payload))
        }
        let outcomes: [IngestOutcome]
        do {
            outcomes = try await pipeline.submit(batches)
        } catch {
            // Nothing acknowledged: the agent keeps the batches and sends them again.
            log("agent \(clientId): storing \(batches.count) batches failed: \(error)")
            return
        }
        metrics.bytesIngested.increment(by: Int64(bytes))
        var finished = false
        for (batch, outcome) in zip(batches, outcomes) {
            switch outcome {
            case .stored:
                metrics.batchesIngested.increment()
                switch batch.payload {
                case .rows(let artifact, _, let rows):
                    metrics.rowsIngested.increment(by: Int64(rows.count))
                    if artifact == "Generic.Client.Info" { await learnFacts(clientId: clientId, rows: rows) }
                case .status(let status) where status.state.isFinal: finished = true
                default: break
                }
                socket.send(ServerMessage.ack(flowId: batch.flowId, seq: batch.seq, rejected: nil))
            case .duplicate:
                metrics.duplicateBatches.increment()
                socket.send(ServerMessage.ack(flowId: batch.flowId, seq: batch.seq, rejected: nil))
            case .rejected(let reason):
                metrics.rejectedBatches.increment()
                log("agent \(clientId): batch \(batch.flowId)#\(batch.seq) rejected: \(reason)")
                try? await store.audit(AuditEntry(
                    time: Date().timeIntervalSince1970, user: clientId, action: "batch-rejected", target: batch.flowId,
                    details: jsonText(["seq": batch.seq, "reason": reason]), remote: socket.remote))
                socket.send(ServerMessage.ack(flowId: batch.flowId, seq: batch.seq, rejected: reason))
            }
        }
        if finished { poke() }
    }

    /// Writes an upload part to the blob store; the last part becomes an upload record (or a log
    /// line saying the bytes did not match). Parts of another client's flow are not written.
    private func uploadPart(_ batch: WireBatch, clientId: String) async -> IngestBatch.Payload {
        guard let flow = try? await store.flow(batch.flowId), flow.clientId == clientId else { return .uploadPart }
        do {
            switch try blobs.write(flowId: batch.flowId, part: batch.payload) {
            case .none: return .uploadPart
            case .success(let record): return .upload(record)
            case .failure(let error): return .log([jsonText(["level": "error", "message": error.message])])
            }
        } catch {
            return .log([jsonText(["level": "error", "message": "server could not store an upload part: \(error)"])])
        }
    }

    /// Host name, FQDN, OS, kernel and addresses from Generic.Client.Info rows.
    private func learnFacts(clientId: String, rows: [String]) async {
        guard var client = try? await store.client(clientId) else { return }
        var facts = ClientFacts(hostname: client.hostname, fqdn: client.fqdn, os: client.os, kernel: client.kernel, ips: client.ips)
        var addresses: [String] = []
        for row in rows {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(row.utf8))) as? [String: Any] else { continue }
            if let value = object["Hostname"] as? String { facts.hostname = value }
            if let value = object["Fqdn"] as? String { facts.fqdn = value }
            if let value = object["OS"] as? String { facts.os = value }
            if let value = object["KernelVersion"] as? String { facts.kernel = value }
            if let ips = object["IPs"] as? [String] { addresses.append(contentsOf: ips.filter { !$0.hasPrefix("127.") && $0 != "::1" }) }
        }
        if !addresses.isEmpty { facts.ips = addresses }
        client.hostname = facts.hostname
        try? await store.setClientFacts(clientId, facts)
    }
}
