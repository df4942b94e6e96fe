import CSQLite3
import Foundation
import PrivateFiles
import VQL

/// The on-disk full-text index behind index() and index_search(): one SQLite file in the index
/// folder, with FTS5 (Porter-stemmed words, as an English analyzer does) for text fields, exact
/// values for keyword, bool and ip fields, and numbers for number and date fields, so ranges
/// work. Every row is stored whole (as JSON) and comes back as it went in. Fields of nested
/// objects are indexed under dotted names (Process.Name), as Bleve names them.
final class IndexStore {
    enum FieldKind: String { case text, keyword, number, date, bool, ip }

    static let fileName = "quarry-index.sqlite"
    /// Bounds on what one row contributes (a hostile or huge row costs little).
    static let maxDepth = 8, maxValuesPerRow = 10_000, maxIndexedText = 1 << 20

    private var db: OpaquePointer?
    let path: String

    struct IndexError: Error, CustomStringConvertible {
        let description: String
    }

    /// Opens (creating when `create`) the index in `folder`.
    init(folder: String, create: Bool, purge: Bool = false) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard create else { throw IndexError(description: "no index at \(folder)") }
            guard mkdir(folder, 0o700) == 0 else { throw IndexError(description: "cannot create \(folder): \(String(cString: strerror(errno)))") }
        } else if !isDirectory.boolValue {
            throw IndexError(description: "\(folder) is a file, not an index folder")
        }
        path = folder + "/" + Self.fileName
        if purge { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) } }
        if create, !FileManager.default.fileExists(atPath: path) {
            // 0600 from the first syscall: the index holds what the query saw.
            _ = Foundation.close(try PrivateFile.create(path))
        } else if !FileManager.default.fileExists(atPath: path) {
            throw IndexError(description: "no index at \(folder) (\(Self.fileName) is missing)")
        }
        let flags = create ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY
        guard sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            close()
            throw IndexError(description: "\(path): \(message)")
        }
        sqlite3_busy_timeout(db, 5000)
        if create {
            try execute("""
                CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, row TEXT NOT NULL);
                CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(value, field UNINDEXED, doc UNINDEXED, tokenize='porter unicode61');
                CREATE TABLE IF NOT EXISTS keywords(doc INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS keywords_by_value ON keywords(field, value);
                CREATE TABLE IF NOT EXISTS numbers(doc INTEGER NOT NULL, field TEXT NOT NULL, value REAL NOT NULL);
                CREATE INDEX IF NOT EXISTS numbers_by_value ON numbers(field, value);
                """)
        } else {
            // A folder that is not an index says so, rather than failing at the first search.
            guard (try? scalar("SELECT count(*) FROM sqlite_master WHERE name = 'docs'")) == 1 else {
                close()
                throw IndexError(description: "\(path) is not a Quarry index")
            }
        }
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "failed"
            sqlite3_free(message)
            throw IndexError(description: text)
        }
    }

    private func scalar(_ sql: String) throws -> Int64 {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw IndexError(description: "no result") }
        return sqlite3_column_int64(statement, 0)
    }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw IndexError(description: String(cString: sqlite3_errmsg(db)))
        }
        return statement
    }

    // MARK: - Adding rows

    private var statements: [String: OpaquePointer] = [:]

    /// A prepared statement kept for the life of the store (the insert path runs per field).
    private func cached(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        let statement = try prepare(sql)
        statements[sql] = statement
        return statement
    }

    private var insertDoc: OpaquePointer? { try? cached("INSERT INTO docs(row) VALUES (?)") }
    private var insertWord: OpaquePointer? { try? cached("INSERT INTO words(value, field, doc) VALUES (?, ?, ?)") }
    private var insertKeyword: OpaquePointer? { try? cached("INSERT INTO keywords(doc, field, value) VALUES (?, ?, ?)") }
    private var insertNumber: OpaquePointer? { try? cached("INSERT INTO numbers(doc, field, value) VALUES (?, ?, ?)") }

    private func run(_ statement: OpaquePointer?, _ binds: [Value]) throws {
        guard let statement else { throw IndexError(description: "the index's statements could not be prepared") }
        sqlite3_reset(statement)
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .int(let n): sqlite3_bind_int64(statement, index, n)
            case .double(let d): sqlite3_bind_double(statement, index, d)
            default: sqlite3_bind_text(statement, index, value.stringValue ?? "", -1, quarry_sqlite_transient())
            }
        }
        guard sqlite3_step(statement) == SQLITE_DONE else { throw IndexError(description: String(cString: sqlite3_errmsg(db))) }
    }

    /// Stores and indexes one row; `kinds` maps field names to analyzers, `defaultKind` the rest.
    func add(_ row: Value, kinds: [String: FieldKind], defaultKind: FieldKind) throws {
        let materialized = row.materialized()
        try run(insertDoc, [.string(JSONWriter.string(materialized))])
        let doc = Value.int(sqlite3_last_insert_rowid(db))
        var fields: [(String, Value)] = []
        Self.flatten(materialized, prefix: "", depth: 0, into: &fields)
        for (field, value) in fields {
            let kind = kinds[field] ?? defaultKind
            switch kind {
            case .text:
                let text = CellText.text(value)
                try run(insertWord, [.string(String(text.prefix(Self.maxIndexedText))), .string(field), doc])
            case .keyword, .bool, .ip:
                try run(insertKeyword, [doc, .string(field), .string(String(CellText.text(value).prefix(Self.maxIndexedText)))])
            case .number, .date:
                if let number = Self.number(value, date: kind == .date) { try run(insertNumber, [doc, .string(field), .double(number)]) }
                try run(insertKeyword, [doc, .string(field), .string(String(CellText.text(value).prefix(4096)))])
            }
        }
    }

    /// Scalars of a row under dotted names; a list's items all under its name.
    static func flatten(_ value: Value, prefix: String, depth: Int, into fields: inout [(String, Value)]) {
        guard fields.count < maxValuesPerRow else { return }
        switch value {
        case .dict(let dict):
            guard depth < maxDepth else { return }
            for (key, item) in dict.pairs { flatten(item, prefix: prefix.isEmpty ? key : prefix + "." + key, depth: depth + 1, into: &fields) }
        case .list(let items):
            guard depth < maxDepth else { return }
            for item in items { flatten(item, prefix: prefix, depth: depth + 1, into: &fields) }
        case .null:
            return
        default:
            if !prefix.isEmpty { fields.append((prefix, value)) }
        }
    }

    /// A number for a number or date field (dates as Unix seconds, from a timestamp or RFC 3339 text).
    static func number(_ value: Value, date: Bool) -> Double? {
        switch value {
        case .int(let n): return Double(n)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        case .timestamp(let t): return t.seconds
        case .string(let s):
            if let d = Double(s) { return d }
            guard date else { return nil }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let when = formatter.date(from: s) { return when.timeIntervalSince1970 }
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.date(from: s)?.timeIntervalSince1970
        default: return nil
        }
    }

    func begin() throws { try execute("BEGIN") }
    func commit() throws { try execute("COMMIT") }

    // MARK: - Searching

    private func ids(_ sql: String, _ binds: [Value]) throws -> Set<Int64> {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        for (i, value) in binds.enumerated() {
            if case .double(let d) = value {
                sqlite3_bind_double(statement, Int32(i + 1), d)
            } else {
                sqlite3_bind_text(statement, Int32(i + 1), value.stringValue ?? "", -1, quarry_sqlite_transient())
            }
        }
        var out = Set<Int64>()
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw IndexError(description: String(cString: sqlite3_errmsg(db))) }
            out.insert(sqlite3_column_int64(statement, 0))
        }
        return out
    }

    /// The documents one clause matches.
    func matches(_ clause: IndexQuery.Clause) throws -> Set<Int64> {
        let fieldFilter = clause.field == nil ? "" : " AND field = ?"
        let fieldBind: [Value] = clause.field.map { [.string($0)] } ?? []
        switch clause.match {
        case .text(let text, let prefix):
            var found = Set<Int64>()
            if let expression = IndexQuery.ftsExpression(text, prefix: prefix) {
                found = try ids("SELECT doc FROM words WHERE words MATCH ?" + fieldFilter, [.string("value : " + expression)] + fieldBind)
            }
            if prefix {
                found.formUnion(try ids("SELECT doc FROM keywords WHERE substr(value, 1, length(?)) = ?" + fieldFilter,
                                        [.string(text), .string(text)] + fieldBind))
            } else {
                found.formUnion(try ids("SELECT doc FROM keywords WHERE value = ?" + fieldFilter, [.string(text)] + fieldBind))
            }
            return found
        case .compare(let op, let number):
            return try ids("SELECT doc FROM numbers WHERE value \(op) ?" + fieldFilter, [.double(number)] + fieldBind)
        }
    }

    /// The stored row of a document.
    func row(_ id: Int64) throws -> Value? {
        let statement = try prepare("SELECT row FROM docs WHERE id = ?")
        defer { sqlite3_finalize(statement) }
        sqlite3_bind_int64(statement, 1, id)
        guard sqlite3_step(statement) == SQLITE_ROW, let text = sqlite3_column_text(statement, 0) else { return nil }
        let bytes = Array(UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, 0))))
        return try? JSONParser.parse(bytes: bytes)
    }

}
