import QuarryAccessors
import QuarryDetect
import QuarryHost
import VQL

/// Runs one fixed VQL query per input with the input bound to the variable `Data`, the way a
/// collection meets a crafted file: through the public plugin or function and `accessor='data'`
/// (or a pathspec over it). Rows are materialized and written as JSON so lazy columns are parsed
/// too. Errors and logged warnings are the expected outcome for most inputs; only a crash counts.
public struct QueryHarness: Sendable {
    /// The query; it names the input as `Data`.
    public let query: String
    /// Rows read at most per input, so one input cannot make the run crawl.
    public let maxRows: Int
    /// Further variables the query names (paths of scratch files, say).
    public let variables: [String: Value]
    private let registry: Registry

    public init(_ query: String, variables: [String: Value] = [:], maxRows: Int = 2_000) {
        self.query = query
        self.variables = variables
        self.maxRows = maxRows
        self.registry = fullRegistry()
    }

    /// Runs the query over `bytes` (with `extra` variables for this input); returns the number of
    /// rows read (errors give 0).
    @discardableResult
    public func run(_ bytes: [UInt8], variables extra: [String: Value] = [:]) -> Int {
        let bound = variables.merging(extra) { $1 }.merging(["Data": .bytes(bytes)]) { $1 }
        let session = Session(registry: registry, logger: MemoryLogger(), variables: bound)
        defer {
            session.close()
            session.context.finish()
        }
        var count = 0
        do {
            for statement in try Parser.parse(query) {
                guard case .rows(let cursor, _) = try session.prepare(statement) else { continue }
                defer { cursor.close() }
                while count < maxRows, let row = try cursor.next() {
                    _ = JSONWriter.string(row.materialized())
                    count += 1
                }
            }
        } catch {}
        return count
    }
}

/// The language core with the host, detection and container libraries: every parser a harness
/// reaches through VQL (the event and network libraries are left out: they watch or dial out).
public func fullRegistry() -> Registry {
    let registry = CoreLibrary.registry()
    registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
    registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
    registry.add(plugins: AccessorLibrary.plugins, functions: AccessorLibrary.functions, accessors: AccessorLibrary.accessors)
    return registry
}
