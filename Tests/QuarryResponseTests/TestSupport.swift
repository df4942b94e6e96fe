import Foundation
import QuarryResponse
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Sessions with the response library, working in a state folder of the test's own.
enum Response {
    static func session(stateRoot: String) -> (Session, MemoryLogger) {
        let registry = CoreLibrary.registry()
        registry.add(plugins: ResponseLibrary.plugins, functions: ResponseLibrary.functions)
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger)
        session.context.setService(ResponseSettings.stateRootKey, stateRoot)
        return (session, logger)
    }

    /// The rows of the last SELECT in `query`.
    static func rows(_ session: Session, _ query: String) throws -> [Value] {
        try session.run(query).last.flatMap { $0 } ?? []
    }

    /// The value of `column` in the first row of `query`.
    static func first(_ session: Session, _ query: String, _ column: String) throws -> Value? {
        try rows(session, query).first.flatMap { field($0, column) }
    }

    static func field(_ row: Value, _ name: String) -> Value? {
        switch row {
        case .dict(let d): return d[name]
        case .object(let o): return o.member(name)
        default: return nil
        }
    }

    static func bool(_ row: Value, _ name: String) -> Bool? {
        if case .bool(let b)? = field(row, name) { return b }
        return nil
    }

    /// Runs a program and returns its exit status and standard output.
    @discardableResult
    static func run(_ argv: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "quarry-response-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
