import VQL

/// Local accounts: `users()` from /etc/passwd and `groups()` from /etc/group, both read under the
/// root remap so a mounted image's accounts can be listed.
public enum Users {
    public static var plugins: [PluginDeclaration] { [users, groups] }

    static let userColumns: [ColumnSpec] = [
        ColumnSpec("User", .string, "Login name."),
        ColumnSpec("Uid", .int, "User id."),
        ColumnSpec("Gid", .int, "Primary group id."),
        ColumnSpec("Description", .string, "GECOS field."),
        ColumnSpec("Homedir", .string, "Home directory."),
        ColumnSpec("Shell", .string, "Login shell."),
    ]

    public static let users = PluginDeclaration(
        name: "users", summary: "Local user accounts from /etc/passwd.",
        columns: userColumns,
        examples: ["SELECT User, Uid, Homedir FROM users() WHERE Uid = 0"],
        permissions: [.filesystemRead]
    ) { ctx in
        let schema = Schema(userColumns.map(\.name), caseInsensitiveFallback: true)
        guard let lines = HostFS.lines("/etc/passwd", root: HostFS.root(ctx.context)) else {
            ctx.context.logOnce(.warning, "users: cannot read /etc/passwd")
            return ArrayCursor([])
        }
        var rows: [Value] = []
        for line in lines where !line.isEmpty && !line.hasPrefix("#") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 7 else { continue }
            rows.append(.dict(Dict(schema: schema, values: [
                .string(f[0]), Int64(f[2]).map { .int($0) } ?? .null, Int64(f[3]).map { .int($0) } ?? .null,
                .string(f[4]), .string(f[5]), .string(f[6]),
            ])))
        }
        return ArrayCursor(rows)
    }

    static let groupColumns: [ColumnSpec] = [
        ColumnSpec("Group", .string, "Group name."),
        ColumnSpec("Gid", .int, "Group id."),
        ColumnSpec("Members", .list, "Supplementary members."),
    ]

    public static let groups = PluginDeclaration(
        name: "groups", summary: "Local groups from /etc/group.",
        columns: groupColumns,
        examples: ["SELECT Gid, Members FROM groups() WHERE Gid = 0"],
        permissions: [.filesystemRead]
    ) { ctx in
        let schema = Schema(groupColumns.map(\.name), caseInsensitiveFallback: true)
        guard let lines = HostFS.lines("/etc/group", root: HostFS.root(ctx.context)) else {
            ctx.context.logOnce(.warning, "groups: cannot read /etc/group")
            return ArrayCursor([])
        }
        var rows: [Value] = []
        for line in lines where !line.isEmpty && !line.hasPrefix("#") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 4 else { continue }
            let members = f[3].split(separator: ",").map { Value.string(String($0)) }
            rows.append(.dict(Dict(schema: schema, values: [.string(f[0]), Int64(f[2]).map { .int($0) } ?? .null, .list(members)])))
        }
        return ArrayCursor(rows)
    }
}
