import Foundation
import VQL

/// utmp(): login records from wtmp/utmp/btmp files (glibc's 384-byte `struct utmp` on Linux),
/// read record by record; a truncated last record is reported, not fatal.
public enum LoginRecords {
    public static let plugins: [PluginDeclaration] = [utmp]

    static let schema = Schema(["Type", "Pid", "Line", "ID", "User", "Host", "Session", "Time", "Address"], caseInsensitiveFallback: true)
    static let typeNames = [0: "EMPTY", 1: "RUN_LVL", 2: "BOOT_TIME", 3: "NEW_TIME", 4: "OLD_TIME", 5: "INIT_PROCESS", 6: "LOGIN_PROCESS", 7: "USER_PROCESS", 8: "DEAD_PROCESS", 9: "ACCOUNTING"]

    public static let utmp = PluginDeclaration(
        name: "utmp", summary: "Login records from a wtmp/utmp/btmp file: Type, User, Line, Host, Time, Address.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (e.g. /var/log/wtmp; a string, OSPath or pathspec)."),
            ArgumentSpec("accessor", .string, FileFunctions.accessorDoc),
        ],
        columns: [
            ColumnSpec("Type", .string, "USER_PROCESS (a login), DEAD_PROCESS (a logout), BOOT_TIME, …"), ColumnSpec("Pid", .int),
            ColumnSpec("Line", .string, "The terminal"), ColumnSpec("ID", .string), ColumnSpec("User", .string), ColumnSpec("Host", .string, "Remote host"),
            ColumnSpec("Session", .int), ColumnSpec("Time", .timestamp), ColumnSpec("Address", .string, "Remote IP address"),
        ],
        examples: ["SELECT * FROM utmp(filename='/var/log/wtmp')"], permissions: [.filesystemRead]
    ) { ctx in
        guard let accessor = ctx.accessor(), let path = ctx.path("filename", for: accessor),
              let file = ctx.open(path, with: accessor) else { return ArrayCursor([]) }
        var offset: Int64 = 0
        var done = false
        return GeneratorCursor(onClose: { file.close() }) {
            while !done {
                try ctx.checkCancelled()
                let data = try file.read(at: offset, count: 384)
                offset += Int64(data.count)
                if data.count < 384 {
                    if !data.isEmpty { ctx.context.logOnce(.warning, "utmp: \(PathValues.display(path)): truncated last record (\(data.count) bytes)") }
                    done = true
                    return nil
                }
                return record(data)
            }
            return nil
        }
    }

    static func record(_ b: [UInt8]) -> Value {
        func i32(_ o: Int) -> Int32 { Int32(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24) }
        func text(_ o: Int, _ n: Int) -> Value {
            let field = b[o..<(o + n)].prefix { $0 != 0 }
            return .string(bytes: Array(field))
        }
        let type = Int(Int16(bitPattern: UInt16(b[0]) | UInt16(b[1]) << 8))
        let seconds = Double(i32(340)) + Double(i32(344)) / 1e6
        var address = ""
        let v6 = Array(b[348..<364])
        if v6[4..<16].allSatisfy({ $0 == 0 }) {
            address = v6[0..<4].map(String.init).joined(separator: ".")
        } else {
            address = stride(from: 0, to: 16, by: 2).map { String(format: "%x", UInt16(v6[$0]) << 8 | UInt16(v6[$0 + 1])) }.joined(separator: ":")
        }
        if address == "0.0.0.0" { address = "" }
        return .dict(Dict(schema: schema, values: [
            .string(typeNames[type] ?? String(type)), .int(Int64(i32(4))), text(8, 32), text(40, 4), text(44, 32), text(76, 256),
            .int(Int64(i32(336))), .timestamp(Timestamp(seconds: seconds)), .string(address),
        ]))
    }
}
