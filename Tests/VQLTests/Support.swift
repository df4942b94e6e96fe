import Foundation
import VQL

/// Paths and helpers shared by the VQL tests.
enum TestSupport {
    /// The package root (two levels above this file's folder).
    static let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Runs a VQL text in a fresh core session; returns the rows of every SELECT (as JSON lines) and the log.
    static func run(_ text: String, registry: Registry = CoreLibrary.registry()) throws -> (rows: [[String]], log: [String]) {
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger)
        let results = try session.run(text)
        return (results.compactMap { $0?.map { JSONWriter.string($0) } }, logger.messages)
    }

    /// The single SELECT's rows as JSON lines.
    static func rows(_ text: String, registry: Registry = CoreLibrary.registry()) throws -> [String] {
        try run(text, registry: registry).rows.last ?? []
    }
}
