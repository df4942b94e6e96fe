import CSQLite3
import Foundation

/// A failed SQLite call: the result code, SQLite's own message (`sqlite3_errmsg`) and the SQL.
struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var sql: String?
    var description: String { message }
}

/// One SQLite database connection with a cache of prepared statements.
///
/// Not thread-safe: the owner serialises every call (SQLiteFleetStore holds a lock around each one).
/// Statements from `statement(_:)` are cached by SQL text and reused; `withStatement` resets them.
final class SQLiteConnection {
    private var db: OpaquePointer?
    private var cache: [String: SQLiteStatement] = [:]
    private var transactionDepth = 0

    /// Opens (creating when needed) the database at `path`.
    init(path: String, flags: Int32 = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX) throws {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(handle)
            throw SQLiteError(code: rc, message: "cannot open \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    /// Finalises the cached statements and closes the connection; later calls fail.
    func close() {
        for statement in cache.values { statement.finalize() }
        cache.removeAll()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func handle() throws -> OpaquePointer {
        guard let db else { throw SQLiteError(code: SQLITE_MISUSE, message: "the database is closed") }
        return db
    }

    /// The error for result code `rc`, with the connection's current message.
    func error(_ rc: Int32, sql: String? = nil) -> SQLiteError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return SQLiteError(code: rc, message: message, sql: sql)
    }

    /// Runs SQL text that may hold several statements and returns no rows.
    func execute(_ sql: String) throws {
        let db = try handle()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    /// Sets the busy timeout in milliseconds.
    func setBusyTimeout(_ milliseconds: Int32) throws {
        let rc = sqlite3_busy_timeout(try handle(), milliseconds)
        if rc != SQLITE_OK { throw error(rc) }
    }

    /// The prepared statement for `sql` (a single statement), prepared once and cached.
    func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = cache[sql] { return cached }
        let db = try handle()
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else {
            sqlite3_finalize(raw)
            throw error(rc, sql: sql)
        }
        let statement = SQLiteStatement(raw, connection: self, sql: sql)
        cache[sql] = statement
        return statement
    }

    /// Runs `body` with the cached statement for `sql`, binding `values` first; resets it afterwards.
    func withStatement<T>(_ sql: String, _ values: [SQLiteBindable?] = [], _ body: (SQLiteStatement) throws -> T) throws -> T {
        let statement = try self.statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        return try body(statement)
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: SQLiteBindable?...) throws -> Int {
        try run(sql, bindings: values)
    }

    /// Runs a statement that returns no rows with a list of values; returns the rows it changed.
    @discardableResult
    func run(_ sql: String, bindings values: [SQLiteBindable?]) throws -> Int {
        try withStatement(sql, values) { statement in
            try statement.stepToEnd()
            return changes
        }
    }

    /// Runs a query and maps every row.
    func query<T>(_ sql: String, _ values: [SQLiteBindable?] = [], _ map: (SQLiteStatement) throws -> T) throws -> [T] {
        try withStatement(sql, values) { statement in
            var rows: [T] = []
            while try statement.step() { rows.append(try map(statement)) }
            return rows
        }
    }

    /// Runs a query and maps its first row, if any.
    func queryFirst<T>(_ sql: String, _ values: [SQLiteBindable?] = [], _ map: (SQLiteStatement) throws -> T) throws -> T? {
        try withStatement(sql, values) { statement in try statement.step() ? try map(statement) : nil }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { db.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Runs `body` in a transaction, committing when it returns and rolling back when it throws.
    /// `immediate` (for writes) takes the write lock at once, so a busy database fails or waits at
    /// BEGIN rather than midway; reads use a deferred transaction. Nested calls join the outer one.
    @discardableResult
    func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        if transactionDepth > 0 {
            transactionDepth += 1
            defer { transactionDepth -= 1 }
            return try body()
        }
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        transactionDepth = 1
        defer { transactionDepth = 0 }
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            if let db, sqlite3_get_autocommit(db) == 0 { try? execute("ROLLBACK") }
            throw error
        }
    }
}

// A connection is used by one owner at a time: the store under its lock, or whoever leased it from
// the reader pool; handing it from one task to another is what the pool does.
extension SQLiteConnection: @unchecked Sendable {}

/// A value that can be bound to a statement parameter.
protocol SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws
}

extension String: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws { try statement.bind(self, at: index) }
}

extension Int: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws { try statement.bind(self, at: index) }
}

extension Int64: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws { try statement.bind(Int(self), at: index) }
}

extension Double: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws { try statement.bind(self, at: index) }
}

extension Bool: SQLiteBindable {
    func bind(to statement: SQLiteStatement, at index: Int32) throws { try statement.bind(self ? 1 : 0, at: index) }
}

/// A prepared statement owned by a `SQLiteConnection`. Parameter and column indexes: parameters
/// start at 1 (as in SQLite), columns at 0.
final class SQLiteStatement {
    private var raw: OpaquePointer?
    private unowned let connection: SQLiteConnection
    let sql: String

    fileprivate init(_ raw: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.raw = raw
        self.connection = connection
        self.sql = sql
    }

    fileprivate func finalize() {
        sqlite3_finalize(raw)
        raw = nil
    }

    private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw connection.error(rc, sql: sql) }
    }

    /// Binds `values` to parameters 1, 2, …; nil binds NULL.
    func bind(_ values: [SQLiteBindable?]) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            if let value { try value.bind(to: self, at: index) } else { try bindNull(at: index) }
        }
    }

    func bind(_ text: String, at index: Int32) throws {
        var text = text
        let rc = text.withUTF8 { bytes -> Int32 in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                // An empty string still needs a pointer, or SQLite would store NULL.
                guard let base = chars.baseAddress, !chars.isEmpty else {
                    return sqlite3_bind_text(raw, index, "", 0, quarry_sqlite_transient())
                }
                guard let count = Int32(exactly: chars.count) else { return SQLITE_TOOBIG }
                return sqlite3_bind_text(raw, index, base, count, quarry_sqlite_transient())
            }
        }
        try check(rc)
    }

    func bind(_ value: Int, at index: Int32) throws { try check(sqlite3_bind_int64(raw, index, Int64(value))) }
    func bind(_ value: Double, at index: Int32) throws { try check(sqlite3_bind_double(raw, index, value)) }
    func bindNull(at index: Int32) throws { try check(sqlite3_bind_null(raw, index)) }

    /// Advances to the next row: true when a row is ready, false when done.
    func step() throws -> Bool {
        let rc = sqlite3_step(raw)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql: sql)
        }
    }

    /// Steps until the statement is done (for statements that return no rows).
    func stepToEnd() throws {
        while try step() {}
    }

    /// Resets the statement so it can run again; the bindings stay (rebind what changes).
    func reset() {
        sqlite3_reset(raw)
    }

    /// Resets the statement and clears every binding to NULL.
    func clear() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_NULL }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(raw, column)) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(raw, column) }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
    func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }
    func bool(_ column: Int32) -> Bool { int(column) != 0 }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(raw, column) else { return "" }
        let count = Int(sqlite3_column_bytes(raw, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
}
