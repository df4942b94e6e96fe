import Artifacts
import FleetCore
import Foundation
import VQL

extension FleetAgent {
    /// Rows per batch, and the most bytes of rows or upload data per batch.
    static let rowsPerBatch = 1000
    static let bytesPerBatch = 2 << 20

    /// Takes a collection request: a flow seen before is ignored (the server re-sends requests until
    /// it hears the flow is running); a new one is recorded, reported running and started.
    func accept(flowId: String, request: CollectionRequest, definitions: [String]) {
        let isNew = flowLock.withLock { () -> Bool in
            if FlowFile.load(stateDir: stateDir, flowId: flowId) != nil { return false }
            FlowFile(flowId: flowId, request: request, state: "running", nextSeq: 1, received: Date().timeIntervalSince1970).save(stateDir: stateDir)
            return true
        }
        guard isNew else { return }
        log("flow \(flowId): collecting \(request.artifacts.joined(separator: ", "))")
        enqueue(flowId: flowId, .status(FlowStatus(state: .running, time: Date().timeIntervalSince1970)))
        let flag = CancellationFlag()
        running.withLockedValue { $0[flowId] = flag }
        let thread = Thread { [self] in
            self.collect(flowId: flowId, request: request, definitions: definitions, cancellation: flag)
            self.running.withLockedValue { $0[flowId] = nil }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Runs the collector into a container in work/, then queues its results, uploads, log and the
    /// final status as batches; marks the flow done.
    private func collect(flowId: String, request: CollectionRequest, definitions: [String], cancellation: CancellationFlag) {
        let repository = ArtifactRepository.builtin()
        for (index, text) in definitions.enumerated() { _ = repository.add(text: text, file: "server:\(flowId)/\(index)") }
        let registry = makeRegistry(repository)
        var options = CollectionOptions()
        options.parameters = request.parameters
        options.timeout = request.timeout
        options.maxRows = request.maxRows
        options.maxUploadBytes = request.maxUploadBytes
        options.cpuLimit = request.cpuLimit
        let output = stateDir + "/work/" + flowId.filter { $0.isLetter || $0.isNumber || $0 == "." } + ".zip"
        var status = FlowStatus(state: .error, time: 0)
        do {
            let collector = try Collector(repository: repository, registry: registry, output: output, options: options, cancellation: cancellation)
            let summary = try collector.collect(request.artifacts)
            let (rows, uploaded) = try queueContainer(flowId: flowId, path: output)
            status.rows = rows
            status.uploadedBytes = uploaded
            status.errors = summary.errors
            switch summary.state {
            case "finished", "finished with errors": status.state = .finished
            case "timed out": status.state = .timedOut
            case "cancelled": status.state = .cancelled
            default: status.state = .error
            }
        } catch {
            status.errors.append("collection failed: \(error)")
        }
        unlink(output)
        flowLock.withLock {
            guard var record = FlowFile.load(stateDir: stateDir, flowId: flowId) else { return }
            status.batches = record.nextSeq - 1
            status.droppedBatches = queue.dropped(flowId: flowId)
            status.time = Date().timeIntervalSince1970
            do {
                try queue.append(WireBatch(flowId: flowId, seq: record.nextSeq, payload: .status(status)))
            } catch {
                log("flow \(flowId): \(error)")
            }
            record.nextSeq += 1
            record.state = "done"
            record.save(stateDir: stateDir)
        }
        pump()
        log("flow \(flowId): \(status.state.rawValue), \(status.rows) rows\(status.errors.isEmpty ? "" : ", \(status.errors.count) errors")")
    }

    /// Turns the container's members into batches: rows per source, upload parts, log lines.
    private func queueContainer(flowId: String, path: String) throws -> (rows: Int, uploaded: Int64) {
        let zip = try ZipReader(path: path)
        var total = 0
        for member in zip.members where member.name.hasPrefix("results/") && member.name.hasSuffix(".json") {
            let encoded = String(member.name.dropFirst("results/".count).dropLast(".json".count))
            let label = encoded.removingPercentEncoding ?? encoded
            let artifact = label.split(separator: "/", maxSplits: 1).first.map(String.init) ?? label
            let source = label.split(separator: "/", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            var rows: [String] = []
            var bytes = 0
            for line in try zip.read(member.name).split(separator: 0x0A) where !line.isEmpty {
                rows.append(String(decoding: line, as: UTF8.self))
                bytes += line.count
                total += 1
                if rows.count >= Self.rowsPerBatch || bytes >= Self.bytesPerBatch {
                    enqueue(flowId: flowId, .rows(artifact: artifact, source: source, rows: rows))
                    rows = []
                    bytes = 0
                }
            }
            if !rows.isEmpty { enqueue(flowId: flowId, .rows(artifact: artifact, source: source, rows: rows)) }
        }
        var uploaded: Int64 = 0
        if zip.members.contains(where: { $0.name == "uploads.json" }) {
            for (index, line) in try zip.read("uploads.json").split(separator: 0x0A).enumerated() {
                guard let record = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any], let name = record["Name"] as? String,
                    let stored = record["StoredName"] as? String, let sha256 = record["Sha256"] as? String
                else { continue }
                let read = try zip.read(stored)
                let data = read.startIndex == 0 ? read : Data(read)
                let md5 = record["Md5"] as? String ?? ""
                var offset = 0
                repeat {
                    let end = min(data.count, offset + Self.bytesPerBatch)
                    enqueue(flowId: flowId, .uploadPart(
                        index: index, name: name, offset: Int64(offset), data: data.subdata(in: offset..<end), last: end == data.count,
                        size: Int64(data.count), sha256: sha256, md5: md5))
                    offset = end
                } while offset < data.count
                uploaded += Int64(data.count)
            }
        }
        if zip.members.contains(where: { $0.name == "log.json" }) {
            let lines = try zip.read("log.json").split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
            for start in stride(from: 0, to: lines.count, by: Self.rowsPerBatch) {
                enqueue(flowId: flowId, .log(Array(lines[start..<min(lines.count, start + Self.rowsPerBatch)])))
            }
        }
        return (total, uploaded)
    }
}
