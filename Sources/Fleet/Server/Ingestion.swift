import FleetCore
import Foundation

extension FleetServer {
    /// Stores a run of batches from one agent in one datastore transaction, then acknowledges each.
    /// The client ID comes from the connection's certificate: a batch naming another client's flow
    /// is rejected by the datastore, recorded in the audit log, and acknowledged as rejected. Upload
    /// parts go to the blob store first; a part it refuses is rejected the same way, unstored.
    func ingest(_ wire: [WireBatch], from clientId: String, socket: AgentSocket) async {
        var batches: [IngestBatch] = []
        var refused: [(batch: WireBatch, reason: String)] = []
        var bytes = 0
        var events: [WireBatch] = []
        for batch in wire {
            if EventStream.artifact(of: batch.flowId) != nil {
                events.append(batch)
                continue
            }
            let payload: IngestBatch.Payload
            switch batch.payload {
            case .rows(let artifact, let source, let rows):
                payload = .rows(artifact: artifact, source: source, rows: rows)
                bytes += rows.reduce(0) { $0 + $1.utf8.count }
            case .log(let lines): payload = .log(lines)
            case .status(let status): payload = .status(status)
            case .uploadPart(_, _, _, let data, _, _, _, _):
                bytes += data.count
                switch await uploadPart(batch, clientId: clientId) {
                case .success(let stored): payload = stored
                case .failure(let error):
                    refused.append((batch, error.message))
                    continue
                }
            }
            batches.append(IngestBatch(clientId: clientId, flowId: batch.flowId, seq: batch.seq, payload: payload))
        }
        for (batch, reason) in refused { await reject(batch.flowId, seq: batch.seq, reason: reason, clientId: clientId, socket: socket) }
        if !events.isEmpty { await ingestEvents(events, from: clientId, socket: socket) }
        if batches.isEmpty { return }
        let outcomes: [IngestOutcome]
        do {
            outcomes = try await pipeline.submit(batches)
        } catch {
            // Nothing acknowledged: the agent keeps the batches and sends them again.
            log("agent \(clientId): storing \(batches.count) batches failed: \(error)")
            return
        }
        metrics.bytesIngested.increment(by: Int64(bytes))
        var finished: [String] = []
        for (batch, outcome) in zip(batches, outcomes) {
            switch outcome {
            case .stored:
                metrics.batchesIngested.increment()
                switch batch.payload {
                case .rows(let artifact, _, let rows):
                    metrics.rowsIngested.increment(by: Int64(rows.count))
                    if artifact == "Generic.Client.Info" { await learnFacts(clientId: clientId, rows: rows) }
                    if ClientIsolation.artifacts.contains(artifact) { await learnIsolation(clientId: clientId, rows: rows) }
                case .log(let lines):
                    await raiseAlerts(fromLog: lines, clientId: clientId, flowId: batch.flowId)
                case .status(let status) where status.state.isFinal:
                    // A flow that ended keeps no staged upload parts (removed before the agent hears).
                    blobs.discard(flowId: batch.flowId)
                    finished.append(batch.flowId)
                default: break
                }
                socket.send(ServerMessage.ack(flowId: batch.flowId, seq: batch.seq, rejected: nil))
            case .duplicate:
                metrics.duplicateBatches.increment()
                socket.send(ServerMessage.ack(flowId: batch.flowId, seq: batch.seq, rejected: nil))
            case .rejected(let reason):
                await reject(batch.flowId, seq: batch.seq, reason: reason, clientId: clientId, socket: socket)
            }
        }
        if !finished.isEmpty {
            poke()
            await announceCompletions(finished)
        }
    }

    /// A batch that is not stored: logged, audited and acknowledged with the reason, so the agent
    /// drops it instead of sending it again and again.
    func reject(_ flowId: String, seq: Int, reason: String, clientId: String, socket: AgentSocket) async {
        metrics.rejectedBatches.increment()
        log("agent \(clientId): batch \(flowId)#\(seq) rejected: \(reason)")
        try? await store.audit(AuditEntry(
            time: Date().timeIntervalSince1970, user: clientId, action: "batch-rejected", target: String(flowId.prefix(128)),
            details: jsonText(["seq": seq, "reason": reason]), remote: socket.remote))
        socket.send(ServerMessage.ack(flowId: flowId, seq: seq, rejected: reason))
    }

    /// Hands an upload part to the blob store — only for a flow of this client that is still
    /// running, checked before anything is written. The last part becomes an upload record (or a
    /// log line when the bytes are not what the agent announced).
    private func uploadPart(_ batch: WireBatch, clientId: String) async -> Result<IngestBatch.Payload, StoreError> {
        let flow: FlowRecord
        do {
            guard let found = try await store.flow(batch.flowId) else { return .failure(StoreError("no flow \(batch.flowId)")) }
            flow = found
        } catch {
            return .failure(StoreError("the flow could not be read: \(error)"))
        }
        guard flow.clientId == clientId else { return .failure(StoreError("flow \(batch.flowId) does not belong to client \(clientId)")) }
        guard !flow.state.isFinal else { return .failure(StoreError("flow \(batch.flowId) is \(flow.state.rawValue): it takes no more upload parts")) }
        let cap = flow.request.maxUploadBytes ?? config.maxUploadBytes
        switch await blobs.receive(flowId: batch.flowId, part: batch.payload, flowBytes: flow.uploadedBytes, cap: cap) {
        case .stored: return .success(.uploadPart)
        case .filed(let record): return .success(.upload(record))
        case .mismatch(let message): return .success(.log([jsonText(["level": "error", "message": message])]))
        case .rejected(let reason): return .failure(StoreError(reason))
        }
    }

    /// An agent's message; a frame that is not valid UTF-8 is read with the bad bytes replaced, so
    /// a batch in it can still be named and refused (otherwise it would come back forever).
    public static func decodeAgentMessage(_ data: Data) -> (message: AgentMessage, invalidText: Bool)? {
        if let message = try? Wire.decode(AgentMessage.self, from: data) { return (message, false) }
        guard String(data: data, encoding: .utf8) == nil else { return nil }
        let repaired = Data(String(decoding: data, as: UTF8.self).utf8)
        guard let message = try? Wire.decode(AgentMessage.self, from: repaired) else { return nil }
        return (message, true)
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
