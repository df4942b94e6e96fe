import Foundation
import QuarryAccessors
import QuarryDetect
import QuarryHost
import VQL

/// Sessions with every accessor (core, host, containers), row helpers, shell commands and
/// scratch folders made from real files with the system's own tools.
enum Fixture {
    static func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        registry.add(plugins: AccessorLibrary.plugins, functions: AccessorLibrary.functions, accessors: AccessorLibrary.accessors)
        return registry
    }

    /// Runs `query` and returns the last SELECT's rows (materialized) and the log.
    static func run(_ query: String, variables: [String: Value] = [:]) throws -> ([Value], [String]) {
        let logger = MemoryLogger()
        let session = Session(registry: registry(), logger: logger, variables: variables)
        defer { session.context.finish() }
        let rows = try session.run(query).last.flatMap { $0 } ?? []
        return (rows, logger.messages)
    }

    static func rows(_ query: String, variables: [String: Value] = [:]) throws -> [Value] { try run(query, variables: variables).0 }

    static func string(_ row: Value, _ name: String) -> String? { row.member(name).stringValue }
    static func int(_ row: Value, _ name: String) -> Int64? { row.member(name).intValue }

    /// Runs a shell command in `directory`; throws with its output when it fails.
    @discardableResult
    static func shell(_ command: String, in directory: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        if process.terminationStatus != 0 { throw ShellError(command: command, output: output) }
        return output
    }

    struct ShellError: Error, CustomStringConvertible {
        let command: String
        let output: String
        var description: String { "\(command): \(output)" }
    }

    /// A fresh folder, removed by the caller.
    static func directory(_ tag: String) -> String {
        let path = NSTemporaryDirectory() + "/quarry-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return (path as NSString).standardizingPath
    }

    static func write(_ path: String, _ text: String) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    static func write(_ path: String, bytes: [UInt8]) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func read(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    /// A single-quoted VQL string.
    static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// The shared Velociraptor testcase files, when present.
    static let testcaseFiles = "/work/shared/conformance/velociraptor-testcases/files/files"
}
