import CSQLite3
import Foundation
import PrivateFiles
import VQL

/// sqlite(): runs a query against a SQLite file read-only. A database that is locked or has a
/// write-ahead log (browser history, for instance) is copied with its -wal/-shm files to a
/// private temporary folder first, so the query sees committed data without touching the
/// original. A database reached through another accessor (data, a zip member) is copied to a
/// private 0600 file first, since SQLite only opens real files.
public enum SQLitePlugin {
    public static let sqlite = PluginDeclaration(
        name: "sqlite", summary: "Queries a SQLite database file read-only (working on a copy when it is locked or has a WAL). "
            + "A statement that changes the database (INSERT, CREATE, …) needs FILESYSTEM_WRITE and runs on the file itself "
            + "(created 0600 when missing; a symbolic link is refused).",
        arguments: [
            ArgumentSpec("file", .any, required: true, "The database file (a string, OSPath or pathspec; the bytes with accessor='data')."),
            ArgumentSpec("query", .string, required: true, "The SQL query."),
            ArgumentSpec("args", .any, "Parameters: a list (?) or a dict (:name)."),
            ArgumentSpec("accessor", .string, "How to reach the database: file (default), data, zip, …"),
        ],
        examples: ["SELECT * FROM sqlite(file=':memory:', query='SELECT 1 AS One')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let query = ctx.string("query"), let accessor = ctx.accessor() else { return ArrayCursor([]) }
        let args = ctx.value("args")
        if ctx.string("file") == ":memory:" {
            do {
                return try SQLiteCursor(file: ":memory:", query: query, args: args)
            } catch {
                ctx.log(.error, "sqlite: :memory:: \(error)")
                return ArrayCursor([])
            }
        }
        guard let path = ctx.path("file", for: accessor) else { return ArrayCursor([]) }
        do {
            if let local = accessor.localPath(path, in: ctx.accessorScope) {
                return try SQLiteCursor(file: String(decoding: local, as: UTF8.self), query: query, args: args,
                                        writable: ctx.context.permissions.contains(.filesystemWrite))
            }
            let copy = try PrivateCopy(path, accessor: accessor, ctx: ctx)
            return try SQLiteCursor(file: copy.file, query: query, args: args, ownedDirectory: copy.directory)
        } catch {
            ctx.log(.error, "sqlite: \(PathValues.display(path)): \(error)")
            return ArrayCursor([])
        }
    }
}

extension SQLitePlugin {
    /// sql(): Velociraptor's database plugin. Only the sqlite driver is served here (read-only,
    /// as sqlite()); a MySQL or PostgreSQL connection is refused with a logged error.
    public static let sql = PluginDeclaration(
        name: "sql", summary: "Runs a SQL query against a database; the sqlite driver reads a SQLite file read-only (mysql and postgres are not available).",
        arguments: [
            ArgumentSpec("driver", .string, required: true, "sqlite (mysql and postgres are refused)."),
            ArgumentSpec("connstring", .string, "For sqlite: the database path when `file` is not given."),
            ArgumentSpec("file", .string, "The SQLite database file."),
            ArgumentSpec("accessor", .string, "Accepted for compatibility (file)."),
            ArgumentSpec("query", .string, required: true, "The SQL query."),
            ArgumentSpec("args", .any, "Parameters: a list (?) or a dict (:name)."),
        ],
        examples: ["SELECT * FROM sql(driver='sqlite', file=':memory:', query='SELECT 1 AS One')"],
        permissions: [.filesystemRead]
    ) { ctx in
        guard (ctx.string("driver") ?? "").lowercased() == "sqlite" else {
            ctx.log(.error, "sql: driver '\(ctx.string("driver") ?? "")' is not available (only sqlite)")
            return ArrayCursor([])
        }
        guard let file = ctx.string("file") ?? ctx.string("connstring"), let query = ctx.string("query") else {
            ctx.log(.error, "sql: the sqlite driver needs file= (or connstring=) and query=")
            return ArrayCursor([])
        }
        do {
            return try SQLiteCursor(file: file, query: query, args: ctx.value("args"))
        } catch {
            ctx.log(.error, "sql: \(file): \(error)")
            return ArrayCursor([])
        }
    }
}

/// A file read through an accessor, copied to a private folder (0700) as a 0600 file, for
/// libraries that only open real files. The caller removes `directory` when done.
struct PrivateCopy {
    let directory: String
    let file: String

    /// Makes a private folder (mkdtemp, 0700) under the temporary root (the agent's own tmp/ on
    /// an agent): the copy is evidence.
    static func makeDirectory() throws -> String {
        try PrivateFile.makeTemporaryFolder(prefix: "quarry-copy")
    }

    init(_ path: OSPath, accessor: any Accessor, ctx: CallContext, name: String = "copy") throws {
        let file = try accessor.open(path, in: ctx.accessorScope)
        defer { file.close() }
        directory = try PrivateCopy.makeDirectory()
        self.file = directory + "/" + name
        let fd = open(self.file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            try? FileManager.default.removeItem(atPath: directory)
            throw SQLiteError(message: "cannot create a private copy: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var offset: Int64 = 0
        do {
            while true {
                try ctx.checkCancelled()
                let chunk = try file.read(at: offset, count: 1 << 20)
                if chunk.isEmpty { break }
                var done = 0
                while done < chunk.count {
                    let n = chunk.withUnsafeBytes { raw -> Int in
                        guard let base = raw.baseAddress else { return -1 }
                        return write(fd, base + done, chunk.count - done)
                    }
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw SQLiteError(message: "writing the private copy: \(String(cString: strerror(errno)))") }
                    done += n
                }
                offset += Int64(chunk.count)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
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

    /// Opens `file` read-only and prepares `query`. A statement that changes the database
    /// (INSERT, CREATE …: Velociraptor's local hash database is kept this way) runs on the file
    /// itself, never on a copy, only when `writable` (the session holds FILESYSTEM_WRITE): the
    /// file is then reopened read-write without following a symbolic link, and created 0600 when
    /// it does not exist yet.
    init(file: String, query: String, args: Value?, ownedDirectory: String? = nil, writable: Bool = false) throws {
        copyDirectory = ownedDirectory
        var path = file
        if file != ":memory:" {
            if !FileManager.default.fileExists(atPath: file) {
                guard writable, ownedDirectory == nil, try Self.writes(query) else { throw SQLiteError(message: "no such file") }
                _ = Foundation.close(try PrivateFile.create(file))
            } else if ownedDirectory == nil, FileManager.default.fileExists(atPath: file + "-wal") || SQLiteCursor.isLocked(file) {
                path = try copyWithJournal(file)
            }
        }
        try open(path, flags: SQLITE_OPEN_READONLY | (path == ":memory:" ? SQLITE_OPEN_MEMORY : 0), query: query)
        if let statement, sqlite3_stmt_readonly(statement) == 0, path != ":memory:" {
            guard writable, ownedDirectory == nil else {
                close()
                throw SQLiteError(message: ownedDirectory == nil
                    ? "the query changes the database, which needs FILESYSTEM_WRITE (sqlite() reads databases read-only otherwise)"
                    : "the query changes the database, which is only possible for a local file")
            }
            // A locked database was copied for reading; a write goes to the file itself.
            if path != file, let copy = copyDirectory {
                try? FileManager.default.removeItem(atPath: copy)
                copyDirectory = nil
            }
            close()
            try open(file, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, query: query)
        }
        bind(args)
        let count = sqlite3_column_count(statement)
        schema = Schema((0..<count).map { String(cString: sqlite3_column_name(statement, $0)) })
    }

    /// Opens the database and prepares the query (closing everything on failure).
    private func open(_ path: String, flags: Int32, query: String) throws {
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
    }

    /// Whether `query` changes a database (judged on an empty one in memory: a statement naming
    /// a table that is not there does not prepare, and counts as not writing).
    static func writes(_ query: String) throws -> Bool {
        var db: OpaquePointer?
        guard sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nil) == SQLITE_OK else { return false }
        defer { sqlite3_close(db) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, query, -1, &statement, nil) == SQLITE_OK, let statement else { return false }
        defer { sqlite3_finalize(statement) }
        return sqlite3_stmt_readonly(statement) == 0
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
