import Foundation
import QuarryHost
import Synchronization
import Testing
import VQL
@testable import QuarryEvents

/// Shared helpers: sessions with the event library, never-ending queries run in a thread,
/// marked child processes and scratch folders.
enum Events {
    /// Why this kernel refuses Quarry's BPF object (nil when it loads).
    static let bpfRefusal: String? = {
        do {
            _ = try BPFObject.load(ringBufferBytes: 1 << 16)
            return nil
        } catch {
            return String(describing: error)
        }
    }()
    static var bpfAvailable: Bool { bpfRefusal == nil }
    static var skipMessage: Comment { Comment(rawValue: "eBPF refused by this kernel (\(bpfRefusal ?? "")): the fallback tests cover it") }

    static let isRoot = getuid() == 0

    static func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: EventsLibrary.plugins, functions: EventsLibrary.functions)
        return registry
    }

    static func session(hub: EventHub? = nil, tracker: ProcessTracker? = nil) -> (Session, MemoryLogger) {
        let logger = MemoryLogger()
        let session = Session(registry: registry(), logger: logger)
        if let hub { session.context.setService(WatchEBPF.serviceKey, hub) }
        if let tracker { session.context.setService(ProcessTracker.serviceKey, tracker) }
        return (session, logger)
    }

    static func hub(allowBPF: Bool = true, ringBufferBytes: Int = 1 << 20) -> EventHub {
        var configuration = EventHub.Configuration()
        configuration.allowBPF = allowBPF
        configuration.ringBufferBytes = ringBufferBytes
        return EventHub(configuration: configuration)
    }

    /// Waits until `condition` holds (polling), at most `timeout` seconds.
    @discardableResult
    static func wait(_ timeout: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Runs `command` through /bin/sh and returns its status.
    @discardableResult
    static func sh(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs a program and returns (pid, status, stdout).
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> (pid: Int32, status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let inPipe = Pipe()
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.processIdentifier, process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func python(_ script: String, _ arguments: [String] = []) throws -> (pid: Int32, status: Int32, output: String) {
        try run("/usr/bin/env", ["python3", "-c", script] + arguments)
    }

    static func marker(_ tag: String) -> String { "quarry-\(tag)-\(UInt32.random(in: 100_000...999_999))" }

    static func scratch(_ tag: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-ev-\(tag)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}

/// A never-ending query run in its own thread; rows accumulate until `stop()` cancels it.
final class Watch: @unchecked Sendable {
    let session: Session
    let logger: MemoryLogger
    private let rows = Mutex<[Value]>([])
    private let done = DispatchSemaphore(value: 0)
    private let failure = Mutex<String?>(nil)

    init(_ query: String, hub: EventHub? = nil, tracker: ProcessTracker? = nil) {
        (session, logger) = Events.session(hub: hub, tracker: tracker)
        let session = self.session
        let box = SendableBox(query)
        Thread.detachNewThread { [self] in
            do {
                let statements = try Parser.parse(box.value)
                for statement in statements {
                    if case .rows(let cursor, _) = try session.prepare(statement) {
                        defer { cursor.close() }
                        while let row = try cursor.next() {
                            let row = row.materialized()
                            self.rows.withLock { $0.append(row) }
                        }
                    }
                }
            } catch is QueryCancelled {
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            done.signal()
        }
    }

    var all: [Value] { rows.withLock { $0 } }

    /// The first row matching `predicate` within `timeout` seconds.
    func first(within timeout: Double = 5, where predicate: (Value) -> Bool) -> Value? {
        var found: Value?
        Events.wait(timeout) {
            found = all.first(where: predicate)
            return found != nil
        }
        return found
    }

    /// Cancels the query and waits for its thread to finish.
    func stop() {
        session.context.cancellation.cancel()
        _ = done.wait(timeout: .now() + 5)
    }

    var error: String? { failure.withLock { $0 } }
}

struct SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Value {
    /// `row.System.HostProcessID` style access for tests.
    subscript(_ path: String) -> Value {
        var current = self
        for part in path.split(separator: ".") { current = current.member(String(part)) }
        return current
    }
}
