import Foundation

/// A private scratch folder for harnesses whose code under test reads a path, not bytes (the
/// container reader, LevelDB): one per process, so parallel fuzzers never share files.
public struct ScratchFolder: Sendable {
    public let path: String

    public init(_ tag: String, root: String = NSTemporaryDirectory()) {
        path = root + "/quarry-fuzz-\(tag)-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `bytes` to NAME in the folder (replacing it) and returns its path.
    @discardableResult
    public func write(_ bytes: [UInt8], as name: String) -> String {
        let file = path + "/" + name
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return file
    }

    /// Empties the folder (what an extraction wrote).
    public func clear() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            try? FileManager.default.removeItem(atPath: path + "/" + name)
        }
    }
}
