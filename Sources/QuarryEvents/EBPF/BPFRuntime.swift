import CLibBPF
import Foundation
import Synchronization

/// The loaded BPF object while anyone subscribes: its ring buffer, the thread that drains it,
/// the attached programs and the kernel filter. Created by the hub when the first subscription
/// needs BPF and destroyed (links detached, maps and programs freed) when the last one leaves.
final class BPFRuntime: @unchecked Sendable {
    private let object: BPFObject
    private var ringBuffer: OpaquePointer?
    private let deliver: @Sendable (DecodedEvent) -> Void
    private let stopping = Atomic<Bool>(false)
    /// Tests hold the poller to make the ring buffer overflow on purpose.
    let paused = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var bootOffset = SystemFields.bootOffset()

    init(ringBufferBytes: Int, deliver: @escaping @Sendable (DecodedEvent) -> Void) throws {
        self.object = try BPFObject.load(ringBufferBytes: ringBufferBytes)
        self.deliver = deliver
        let fd = object.mapFD("events")
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard fd >= 0, let ring = ring_buffer__new(fd, { context, data, size in
            guard let context, let data else { return 0 }
            let runtime = Unmanaged<BPFRuntime>.fromOpaque(context).takeUnretainedValue()
            runtime.handle(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }, context, nil) else {
            throw BPFLoadError(message: "cannot set up the BPF ring buffer: \(String(cString: strerror(errno)))")
        }
        ringBuffer = ring
        let thread = Thread { [self] in poll() }
        thread.name = "quarry-ebpf"
        thread.start()
    }

    /// Programs that cannot run here, with the reason.
    var unavailable: [String: String] { lock.withLock { object.unavailable } }
    var attached: Set<String> { lock.withLock { object.attached } }

    /// Writes the kernel filter and attaches exactly `programs` (detaching the rest). Returns
    /// the programs that could not be attached.
    func configure(_ config: qe_config, programs: Set<String>) -> [String: String] {
        lock.withLock {
            var config = config
            _ = object.writeFirst("config", &config)
            for name in object.attached where !programs.contains(name) { object.detach(name) }
            var failed: [String: String] = [:]
            for name in programs.sorted() where !object.attach(name) {
                failed[name] = object.unavailable[name] ?? "cannot attach"
            }
            return failed
        }
    }

    /// Kernel counters: records sent, records lost (ring buffer full), events filtered out.
    var counters: (sent: UInt64, lost: UInt64, filtered: UInt64) {
        lock.withLock {
            (object.counter(UInt32(QE_COUNTER_SENT.rawValue)), object.counter(UInt32(QE_COUNTER_LOST.rawValue)),
             object.counter(UInt32(QE_COUNTER_FILTERED.rawValue)))
        }
    }

    private func handle(_ record: UnsafeRawBufferPointer) {
        if let event = EventDecoder.decode(record, bootOffset: bootOffset) { deliver(event) }
    }

    /// The longest an event waits in the ring before it is read (its latency budget is 1 s end to end).
    static let drainMilliseconds: Int32 = 20

    private func poll() {
        var lastOffsetUpdate = Date()
        while !stopping.load(ordering: .relaxed) {
            if paused.load(ordering: .relaxed) {
                usleep(10_000)
                continue
            }
            guard let ring = ringBuffer else { break }
            // The programs wake this thread only when the ring fills past a threshold
            // (quarry.bpf.c, QE_WAKEUP_BYTES); otherwise it drains the ring every drainMilliseconds.
            let status = ring_buffer__poll(ring, Self.drainMilliseconds)
            if status < 0 && status != -EINTR { usleep(100_000) }
            _ = ring_buffer__consume(ring)
            if lastOffsetUpdate.timeIntervalSinceNow < -10 {
                // Follow wall-clock adjustments.
                bootOffset = SystemFields.bootOffset()
                lastOffsetUpdate = Date()
            }
        }
        finished.signal()
    }

    /// Stops the poller and frees everything; the object must not be used afterwards.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        lock.withLock {
            if let ring = ringBuffer { ring_buffer__free(ring) }
            ringBuffer = nil
            for name in object.attached { object.detach(name) }
        }
    }
}
