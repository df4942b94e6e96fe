import Foundation
import QuarryHost
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers: sessions with the host library, row access, shell commands and temp trees.
enum Host {
    static func session(root: String? = nil) -> (Session, MemoryLogger) {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger)
        if let root { session.context.setService("host.root", root) }
        return (session, logger)
    }

    /// The rows of the last SELECT in `query`.
    static func rows(_ query: String, root: String? = nil) throws -> [Value] {
        let (session, _) = session(root: root)
        return try session.run(query).last.flatMap { $0 } ?? []
    }

    static func field(_ row: Value, _ name: String) -> Value? {
        switch row {
        case .dict(let d): return d[name]
        case .object(let o): return o.member(name)
        default: return nil
        }
    }

    static func string(_ row: Value, _ name: String) -> String? { field(row, name)?.stringValue }
    static func int(_ row: Value, _ name: String) -> Int64? { field(row, name)?.intValue }

    /// Runs a shell command and returns its stdout.
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A fresh directory under /tmp, removed by the caller with `cleanup`.
    static func temporaryDirectory(_ tag: String = "quarry") -> String {
        let path = NSTemporaryDirectory() + "/\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return (path as NSString).standardizingPath
    }

    static func cleanup(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    static func write(_ path: String, _ text: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    static func mkdir(_ path: String) {
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Escapes a path for a single-quoted VQL string.
    static func quoted(_ path: String) -> String {
        "'" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}
