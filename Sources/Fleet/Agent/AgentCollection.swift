import Artifacts
import FleetCore
import Foundation
import NIOConcurrencyHelpers
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
        enqueue(flowId: flowId, .status(FlowStatus(state: .running, time: Date().timeIntervalSince1970)))
        if case .refuse(_, let reason) = watchdog.admit(flowId: flowId, request: request) {
            log("flow \(flowId): \(reason)")
            finishFlow(flowId: flowId, status: FlowStatus(state: .error, errors: [reason], time: 0))
            return
        }
        log("flow \(flowId): collecting \(request.artifacts.joined(separator: ", "))")
        let flag = CancellationFlag()
        running.withLockedValue { $0[flowId] = flag }
        let thread = Thread { [self] in
            let throttle = self.watchdog.attach(flowId: flowId, cancellation: flag, cpuLimit: request.cpuLimit)
            self.collect(flowId: flowId, request: request, definitions: definitions, cancellation: flag, throttle: throttle)
            self.running.withLockedValue { $0[flowId] = nil }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Runs the collector into a container in work/; each chunk of rows and each upload is queued
    /// as batches the moment it reaches the container, so the server sees results while the
    /// collection runs and an agent crash loses only what was not chunked yet. Then the log and the
    /// final status; the flow is marked done. A collection the watchdog cancelled ends as an error
    /// whose first line is the watchdog's reason.
    private func collect(flowId: String, request: CollectionRequest, definitions: [String], cancellation: CancellationFlag, throttle: CPUThrottle?) {
        let repository = ArtifactRepository.builtin()
        for (index, text) in definitions.enumerated() { _ = repository.add(text: text, file: "server:\(flowId)/\(index)") }
        let registry = makeRegistry(repository)
        registry.add(functions: [rekeyFunction])
        var options = CollectionOptions()
        options.parameters = request.parameters
        options.timeout = request.timeout
        options.maxRows = request.maxRows
        options.maxUploadBytes = request.maxUploadBytes
        options.cpuLimit = request.cpuLimit
        options.throttle = throttle
        options.sessionId = flowId
        options.variables[ClientScope.variable] = ClientScope.config(serverURLs: config.serverURLs, labels: config.labels, caCertificate: config.caCertificate, localStorage: ClientScope.localStorage(stateDir + "/local"))
        let output = stateDir + "/work/" + flowId.filter { $0.isLetter || $0.isNumber || $0 == "." } + ".zip"
        let sender = FlowSender(agent: self, flowId: flowId, container: output, cancellation: cancellation)
        var status = FlowStatus(state: .error, time: 0)
        do {
            let collector = try Collector(repository: repository, registry: registry, output: output, options: options, cancellation: cancellation)
            collector.onEvent = { event in sender.send(event) }
            let summary = try collector.collect(request.artifacts)
            sender.sendLog(collector.logLines)
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
        if let reason = watchdog.finish(flowId: flowId) {
            status.state = .error
            status.errors.insert(reason, at: 0)
        }
        let sent = sender.totals
        status.rows = sent.rows
        status.uploadedBytes = sent.uploaded
        status.errors += sent.errors
        unlink(output)
        finishFlow(flowId: flowId, status: status)
    }

    /// Queues the flow's final status (with its batch totals) and marks the flow done.
    private func finishFlow(flowId: String, status: FlowStatus) {
        var status = status
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
            record.finalState = status.state.rawValue
            record.save(stateDir: stateDir)
        }
        pump()
        log("flow \(flowId): \(status.state.rawValue), \(status.rows) rows\(status.errors.isEmpty ? "" : ", \(status.errors.count) errors")")
    }
}

/// Turns what a running collection writes into queued batches: rows in batches of at most 1000
/// rows or 2 MiB, uploads in 2 MiB parts read back from the container file one at a time (never
/// whole: an upload of any size goes with bounded memory). Before each batch it waits while the
/// queue is more than half full, so a slow server slows the collection instead of making the
/// queue drop results.
final class FlowSender: Sendable {
    private let agent: FleetAgent
    private let flowId: String
    private let container: String
    private let cancellation: CancellationFlag
    private let state = NIOLockedValueBox(Totals())

    struct Totals {
        var rows = 0
        var uploaded: Int64 = 0
        var uploads = 0
        var errors: [String] = []
    }

    init(agent: FleetAgent, flowId: String, container: String, cancellation: CancellationFlag) {
        self.agent = agent
        self.flowId = flowId
        self.container = container
        self.cancellation = cancellation
    }

    var totals: Totals { state.withLockedValue { $0 } }

    func send(_ event: CollectionEvent) {
        switch event {
        case .rows(let artifact, let source, let rows):
            var batch: [String] = []
            var bytes = 0
            for row in rows {
                batch.append(row)
                bytes += row.utf8.count
                if batch.count >= FleetAgent.rowsPerBatch || bytes >= FleetAgent.bytesPerBatch {
                    queue(.rows(artifact: artifact, source: source, rows: batch))
                    batch = []
                    bytes = 0
                }
            }
            if !batch.isEmpty { queue(.rows(artifact: artifact, source: source, rows: batch)) }
            state.withLockedValue { $0.rows += rows.count }
        case .upload(let name, _, let size, let sha256, let md5, let offset):
            let index = state.withLockedValue { totals -> Int in
                defer { totals.uploads += 1 }
                return totals.uploads
            }
            do {
                try sendUpload(index: index, name: name, size: size, sha256: sha256, md5: md5, at: offset)
                state.withLockedValue { $0.uploaded += size }
            } catch {
                state.withLockedValue { $0.errors.append("upload \(name): \(error)") }
            }
        }
    }

    func sendLog(_ lines: [String]) {
        for start in stride(from: 0, to: lines.count, by: FleetAgent.rowsPerBatch) {
            queue(.log(Array(lines[start..<min(lines.count, start + FleetAgent.rowsPerBatch)])))
        }
    }

    /// Reads the upload's bytes from the container, one part at a time, and queues each part.
    private func sendUpload(index: Int, name: String, size: Int64, sha256: String, md5: String, at start: UInt64) throws {
        let fd = open(container, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransportError("cannot read the container: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset: Int64 = 0
        repeat {
            if cancellation.isCancelled {
                throw TransportError("the collection was cancelled after \(offset) of \(size) bytes were queued")
            }
            let count = Int(min(Int64(FleetAgent.bytesPerBatch), size - offset))
            var data = Data(count: count)
            let read = data.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                var done = 0
                while done < count {
                    let n = pread(fd, base + done, count - done, off_t(start) + off_t(offset) + off_t(done))
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    done += n
                }
                return done
            }
            guard read == count else { throw TransportError("the container ended early at \(offset + Int64(read)) of \(size) bytes") }
            queue(.uploadPart(
                index: index, name: name, offset: offset, data: data, last: offset + Int64(count) == size,
                size: size, sha256: sha256, md5: md5))
            offset += Int64(count)
        } while offset < size
    }

    private func queue(_ payload: WirePayload) {
        agent.queue.waitForRoom(below: agent.queue.maxBytes / 2, stop: { [cancellation] in cancellation.isCancelled })
        agent.enqueue(flowId: flowId, payload)
    }
}
