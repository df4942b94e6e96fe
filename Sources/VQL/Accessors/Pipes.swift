import Synchronization

/// `pipe()` and the `pipe` accessor: a query whose rows become a file's content, so plugins
/// that read files can read what another query produces (no temporary file). The pipe is a
/// value (usually bound with LET); the accessor's path names the variable, or the pipe's
/// `name=`. The first column of each row is written, followed by `sep`.
public enum Pipes {
    public static let function = FunctionDeclaration(
        name: "pipe", summary: "A pipe: reading it (accessor='pipe', filename=the variable's name) runs the query and gives its first column, row after row.",
        arguments: [
            ArgumentSpec("name", .string, "Also register the pipe under this name."),
            ArgumentSpec("query", .query, required: true, "The query whose rows feed the pipe."),
            ArgumentSpec("sep", .string, "Written after each row (default nothing)."),
        ],
        returns: .object,
        examples: ["LET P = pipe(query={ SELECT 'a,b' AS Line FROM scope() }, sep='\\n') SELECT P FROM scope()"]
    ) { ctx in
        guard case .query(let query)? = ctx.raw("query")?.reduced() else {
            ctx.log(.error, "pipe: query= must be a query")
            return .null
        }
        let pipe = PipeValue(query: query, separator: ctx.bytes("sep") ?? [])
        if let name = ctx.string("name") { ctx.context.service(PipeValue.named, orMake: { NamedPipes() }).add(name, pipe) }
        return .object(pipe)
    }

    /// Bytes one pipe gives at most (a query that never ends cannot fill memory).
    static let limit = 256 << 20
}

/// A pipe value: the query and the separator.
public final class PipeValue: HostObject {
    static let named = ServiceKey<NamedPipes>("vql.pipes")
    let query: StoredQuery
    let separator: [UInt8]

    init(query: StoredQuery, separator: [UInt8]) {
        self.query = query
        self.separator = separator
    }

    public var typeName: String { "Pipe" }
    public var memberNames: [String] { [] }
    public func member(_ name: String) -> Value? { nil }

    /// Runs the query and collects its output (bounded).
    func content(_ scope: AccessorScope) throws -> [UInt8] {
        let cursor = try query.cursor()
        defer { cursor.close() }
        var out: [UInt8] = []
        while let row = try cursor.next() {
            try scope.checkCancelled()
            let value: Value
            switch row.reduced() {
            case .dict(let d): value = d.values.first ?? .null
            case .object(let o): value = o.memberNames.first.flatMap { o.member($0) } ?? o.scalar ?? .null
            case let other: value = other
            }
            out += value.reduced().byteValue ?? Array(CellText.text(value.materialized()).utf8)
            out += separator
            if out.count > Pipes.limit { throw AccessorError.invalid("pipe: more than \(Pipes.limit) bytes") }
        }
        return out
    }
}

/// Pipes registered by name for the session.
final class NamedPipes: @unchecked Sendable {
    private let pipes = Mutex<[String: PipeValue]>([:])
    func add(_ name: String, _ pipe: PipeValue) { pipes.withLock { $0[name] = pipe } }
    func get(_ name: String) -> PipeValue? { pipes.withLock { $0[name] } }
}

/// The `pipe` accessor: the path names a pipe (a variable holding one, or a registered name).
public struct PipeAccessor: Accessor {
    public init() {}
    public var name: String { "pipe" }
    public var summary: String { "Reads a pipe() (the path names the variable holding it): the rows of its query as a file." }
    public var canList: Bool { false }
    public func parse(_ text: [UInt8]) -> OSPath { OSPath(text) }

    public func open(_ path: OSPath, in scope: AccessorScope) throws -> any ReadableFile {
        let name = String(decoding: path.raw ?? path.path, as: UTF8.self)
        var pipe: PipeValue?
        if case .object(let value as PipeValue)? = scope.env?.lookup(name)?.reduced() { pipe = value }
        if pipe == nil { pipe = scope.context.service(PipeValue.named)?.get(name) }
        guard let pipe else { throw AccessorError.notFound("pipe '\(name)'") }
        return MemoryFile(try pipe.content(scope))
    }
}
