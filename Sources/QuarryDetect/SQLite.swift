import CSQLite3
import Foundation
import PrivateFiles
import VQL

/// sqlite(): runs a query against a SQLite file read-only. A database that is locked or has a
/// write-ahead log (browser history, for instance) is copied with its -wal/-shm files to a
/// temporary folder first, so the query sees committed data without touching the original.
public enum SQLitePlugin {
    public static let sqlite = PluginDeclaration(
        name: "sqlite", summary: "Queries a SQLite database file read-only (working on a copy when it is locked or has a WAL).",
        arguments: [
            ArgumentSpec("file", .string, required: true, "The database file."),
            ArgumentSpec("query", .string, required: true, "The SQL query."),
            ArgumentSpec("args", .any, "Parameters: a list (?) or a dict (:name)."),
            ArgumentSpec("accessor", .string, "Accepted for compatibility (file)."),
        ],
        examples: ["SELECT * FROM sqlite(file=':memory:', query='SELECT 1 AS One')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let file = ctx.string("file"), let query = ctx.string("query") else { return ArrayCursor([]) }
        let args = ctx.value("args")
        do {
            return try SQLiteCursor(file: file, query: query, args: args, ctx: ctx)
        } catch {
            ctx.log(.error, "sqlite: \(file): \(error)")
            return ArrayCursor([])
        }
    }
}

/// Why a SQLite call failed, with SQLite's own message.
struct SQLiteError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

final class SQLiteCursor: RowCursor {
    private var db: OpaquePointer?
    private var statement: OpaquePointer?
    private var schema = Schema.empty
    private var copyDirectory: String?

    init(file: String, query: String, args: Value?, ctx: CallContext) throws {
        var path = file
        if file != ":memory:" {
            guard FileManager.default.fileExists(atPath: file) else { throw SQLiteError(message: "no such file") }
            if FileManager.default.fileExists(atPath: file + "-wal") || SQLiteCursor.isLocked(file) {
                path = try copyWithJournal(file)
            }
        }
        let flags = SQLITE_OPEN_READONLY | (path == ":memory:" ? SQLITE_OPEN_MEMORY : 0)
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            close()
            throw SQLiteError(message: message)
        }
        sqlite3_busy_timeout(db, 1000)
        guard sqlite3_prepare_v2(db, query, -1, &statement, nil) == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(db))
            close()
            throw SQLiteError(message: message)
        }
        bind(args)
        let count = sqlite3_column_count(statement)
        schema = Schema((0..<count).map { String(cString: sqlite3_column_name(statement, $0)) })
        _ = ctx
    }

    private static func isLocked(_ file: String) -> Bool {
        var db: OpaquePointer?
        defer { sqlite3_close(db) }
        guard sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { return true }
        return sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nil, nil, nil) != SQLITE_OK
    }

    private func copyWithJournal(_ file: String) throws -> String {
        // A private folder (0700) under the temporary root (the agent's own tmp/ on an agent): the copy
        // is evidence.
        let dir = try PrivateFile.makeTemporaryFolder(prefix: "quarry-sqlite")
        copyDirectory = dir
        let target = dir + "/" + (file as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: file, toPath: target)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: file + suffix) {
            try? FileManager.default.copyItem(atPath: file + suffix, toPath: target + suffix)
        }
        return target
    }

    private func bind(_ args: Value?) {
        guard let args, let statement else { return }
        func bindValue(_ value: Value, at index: Int32) {
            switch value.reduced() {
            case .null: sqlite3_bind_null(statement, index)
            case .int(let i): sqlite3_bind_int64(statement, index, i)
            case .double(let d): sqlite3_bind_double(statement, index, d)
            case .bool(let b): sqlite3_bind_int64(statement, index, b ? 1 : 0)
            case let v:
                let text = v.stringValue ?? JSONWriter.string(v.materialized())
                sqlite3_bind_text(statement, index, text, -1, quarry_sqlite_transient())
            }
        }
        switch args {
        case .dict(let d):
            for (key, value) in d.pairs {
                for prefix in [":", "@", "$"] {
                    let index = sqlite3_bind_parameter_index(statement, prefix + key)
                    if index > 0 { bindValue(value, at: index) }
                }
            }
        default:
            for (i, value) in (args.listElements ?? [args]).enumerated() { bindValue(value, at: Int32(i + 1)) }
        }
    }

    func next() throws -> Value? {
        guard let statement else { return nil }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_ROW else {
            if rc != SQLITE_DONE, let db { throw SQLiteError(message: String(cString: sqlite3_errmsg(db))) }
            close()
            return nil
        }
        var values: [Value] = []
        for i in 0..<Int32(schema.names.count) {
            switch sqlite3_column_type(statement, i) {
            case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(statement, i)))
            case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, i)))
            case SQLITE_TEXT:
                let count = Int(sqlite3_column_bytes(statement, i))
                if let text = sqlite3_column_text(statement, i) {
                    values.append(.string(bytes: Array(UnsafeBufferPointer(start: text, count: count))))
                } else {
                    values.append(.string(""))
                }
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(statement, i))
                if let blob = sqlite3_column_blob(statement, i) {
                    values.append(.string(bytes: Array(UnsafeRawBufferPointer(start: blob, count: count))))
                } else {
                    values.append(.string(""))
                }
            default: values.append(.null)
            }
        }
        return .dict(Dict(schema: schema, values: values))
    }

    func close() {
        if let statement { sqlite3_finalize(statement) }
        statement = nil
        if let db { sqlite3_close(db) }
        db = nil
        if let copyDirectory { try? FileManager.default.removeItem(atPath: copyDirectory) }
        copyDirectory = nil
    }

    deinit { close() }
}
