import Foundation
import VQL

/// index() and index_search(): Velociraptor's local full-text index of a query's rows, for
/// triage over large collected text (configuration files, logs, command lines) without
/// re-reading it. Velociraptor keeps a Bleve index; Quarry keeps SQLite FTS5 in the same kind of
/// folder, and reads the same query-string forms (see IndexQuery).
public enum IndexPlugins {
    public static var plugins: [PluginDeclaration] { [index, indexSearch] }

    public static let index = PluginDeclaration(
        name: "index",
        summary: "Builds (or adds to) a full-text index of a query's rows in the folder output=, searchable with "
            + "index_search(). Fields are text (English words, stemmed) unless mapping= says keyword, number, date, bool "
            + "or ip; nested fields are named with dots. Passes the rows on unless silent.",
        arguments: [
            ArgumentSpec("query", .query, required: true, "The rows to index."),
            ArgumentSpec("mapping", .dict, "Field name -> text, keyword, number, date, bool or ip."),
            ArgumentSpec("default_analyzer", .string, "How unmapped fields are indexed: text/standard/en (default) or keyword."),
            ArgumentSpec("output", .string, required: true, "The index folder (created 0700 when missing)."),
            ArgumentSpec("workers", .int, "Accepted for Velociraptor's queries: one writer adds the rows."),
            ArgumentSpec("purge", .bool, "Start a fresh index, dropping what the folder held."),
            ArgumentSpec("batch", .int, "Rows per transaction (default 1000)."),
            ArgumentSpec("silent", .bool, "Do not pass the rows on (faster)."),
        ],
        examples: ["SELECT * FROM index(query={ SELECT 'syslog rotates daily' AS Data FROM scope() }, output=tempdir() + '/ix')"],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard ctx.context.require(.filesystemWrite, for: "index"), let output = ctx.string("output"), !output.isEmpty else {
            ctx.log(.error, "index: output= (the index folder) is required")
            return ArrayCursor([])
        }
        var kinds: [String: IndexStore.FieldKind] = [:]
        if case .dict(let mapping)? = ctx.value("mapping")?.reduced() {
            for (field, value) in mapping.pairs {
                guard let name = value.reduced().stringValue, let kind = IndexStore.FieldKind(rawValue: name.lowercased()) else {
                    ctx.log(.error, "index: mapping of \(field) must be text, keyword, number, date, bool or ip")
                    return ArrayCursor([])
                }
                kinds[field] = kind
            }
        }
        let analyzer = (ctx.string("default_analyzer") ?? "standard").lowercased()
        let defaultKind: IndexStore.FieldKind = analyzer == "keyword" ? .keyword : .text
        let store: IndexStore
        do {
            store = try IndexStore(folder: output, create: true, purge: ctx.bool("purge") ?? false)
        } catch {
            ctx.log(.error, "index: \(error)")
            return ArrayCursor([])
        }
        guard let source = try ctx.rows("query") else { return ArrayCursor([]) }
        return IndexCursor(store: store, source: source, kinds: kinds, defaultKind: defaultKind,
                           batch: max(1, Int(clamping: ctx.int("batch") ?? 1000)), silent: ctx.bool("silent") ?? false, ctx: ctx)
    }

    public static let indexSearch = PluginDeclaration(
        name: "index_search",
        summary: "Searches an index made by index(): words and \"phrases\", prefix*, field:term, field:>N (>=, <, <=), "
            + "+required and -excluded clauses. Rows come back as they were indexed, best matches first unless sort=.",
        arguments: [
            ArgumentSpec("path", .string, required: true, "The index folder."),
            ArgumentSpec("search", .string, required: true, "The query string."),
            ArgumentSpec("fields", .stringList, "Only these fields of each row (names, or one comma-separated string)."),
            ArgumentSpec("sort", .string, "Order by this field (a leading - for descending)."),
            ArgumentSpec("start", .int, "Skip this many matches first."),
        ],
        examples: ["""
            LET IndexPath <= tempdir() + '/ix'
            LET Built <= SELECT * FROM index(query={ SELECT 'syslog rotates daily' AS Data FROM scope() }, output=IndexPath, silent=TRUE)
            SELECT * FROM index_search(path=IndexPath, search='Data:syslog')
            """],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "index_search"), let path = ctx.string("path"), let text = ctx.string("search") else {
            ctx.log(.error, "index_search: path= and search= are required")
            return ArrayCursor([])
        }
        do {
            let query = try IndexQuery.parse(text)
            let store = try IndexStore(folder: path, create: false)
            defer { store.close() }
            let ranked = query.combine(try query.clauses.map { try store.matches($0) })
            var rows: [Value] = []
            for (id, _) in ranked {
                try ctx.checkCancelled()
                if let row = try store.row(id) { rows.append(row) }
            }
            if let sort = ctx.string("sort"), !sort.isEmpty {
                let descending = sort.hasPrefix("-")
                let field = descending ? String(sort.dropFirst()) : sort
                rows = rows.enumerated().sorted { a, b in
                    let x = a.element.dotted(field).reduced(), y = b.element.dotted(field).reduced()
                    if Value.vqlEqual(x, y) { return a.offset < b.offset }
                    return descending ? Value.sortOrder(y, x) : Value.sortOrder(x, y)
                }.map(\.element)
            }
            rows = Array(rows.dropFirst(Int(clamping: max(0, ctx.int("start") ?? 0))))
            if let fields = ctx.strings("fields")?.flatMap({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }),
               !fields.isEmpty {
                rows = rows.map { row in .dict(Dict(fields.map { ($0, row.dotted($0)) })) }
            }
            return ArrayCursor(rows)
        } catch {
            ctx.log(.error, "index_search: \(error)")
            return ArrayCursor([])
        }
    }
}

extension Value {
    /// The member at a dotted path (Process.Name), NULL when absent.
    fileprivate func dotted(_ path: String) -> Value {
        path.split(separator: ".").reduce(self) { $0.member(String($1)) }
    }
}

/// Adds each row of the query to the index in transactions of `batch` rows, passing it on.
final class IndexCursor: RowCursor {
    private let store: IndexStore
    private let source: RowCursor
    private let kinds: [String: IndexStore.FieldKind]
    private let defaultKind: IndexStore.FieldKind
    private let batch: Int
    private let silent: Bool
    private let ctx: CallContext
    private var pending = 0
    private var finished = false

    init(store: IndexStore, source: RowCursor, kinds: [String: IndexStore.FieldKind], defaultKind: IndexStore.FieldKind,
         batch: Int, silent: Bool, ctx: CallContext) {
        self.store = store
        self.source = source
        self.kinds = kinds
        self.defaultKind = defaultKind
        self.batch = batch
        self.silent = silent
        self.ctx = ctx
    }

    func next() throws -> Value? {
        while !finished {
            try ctx.checkCancelled()
            guard let row = try source.next() else {
                finish()
                return nil
            }
            do {
                if pending == 0 { try store.begin() }
                try store.add(row, kinds: kinds, defaultKind: defaultKind)
                pending += 1
                if pending >= batch {
                    try store.commit()
                    pending = 0
                }
            } catch {
                ctx.log(.error, "index: \(error)")
                finish()
                return nil
            }
            if !silent { return row }
        }
        return nil
    }

    /// Commits what is pending: rows already passed on are in the index even when the query is cut short.
    private func finish() {
        guard !finished else { return }
        finished = true
        if pending > 0 {
            do { try store.commit() } catch { ctx.log(.error, "index: \(error)") }
            pending = 0
        }
        source.close()
        store.close()
    }

    func close() { finish() }
}
