import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// Facts about the running system: `info()` (replacing the core one), `sysinfo()`, `mounts()`,
/// `environ()` and `kernel_modules()`.
public enum SystemInfo {
    public static var plugins: [PluginDeclaration] { [info, sysinfo, MountsPlugin.plugin, environPlugin, kernelModules] }
    public static var functions: [FunctionDeclaration] { [environ] }

    static let infoColumns: [ColumnSpec] = [
        ColumnSpec("Hostname", .string, "Host name."),
        ColumnSpec("Uptime", .int, "Seconds since boot."),
        ColumnSpec("BootTime", .int, "Boot time, epoch seconds."),
        ColumnSpec("OS", .string, "Always linux."),
        ColumnSpec("Platform", .string, "Distribution id (/etc/os-release ID)."),
        ColumnSpec("PlatformFamily", .string, "Distribution family (ID_LIKE, else ID)."),
        ColumnSpec("PlatformVersion", .string, "Distribution version (VERSION_ID)."),
        ColumnSpec("KernelVersion", .string, "uname release."),
        ColumnSpec("Architecture", .string, "amd64, arm64, …"),
        ColumnSpec("Fqdn", .string, "Fully qualified host name."),
        ColumnSpec("HostID", .string, "/etc/machine-id."),
        ColumnSpec("Exe", .string, "This program's path."),
        ColumnSpec("CWD", .string, "Current directory."),
        ColumnSpec("IsAdmin", .bool, "Running as root."),
        ColumnSpec("NumCPU", .int, "Online processors."),
    ]

    public static let info = PluginDeclaration(
        name: "info", summary: "Facts about this machine: host name, OS release, kernel, architecture, uptime, …",
        columns: infoColumns,
        examples: ["SELECT Hostname, OS, Architecture, KernelVersion FROM info()"],
        permissions: [.machineState]
    ) { ctx in
        let root = HostFS.root(ctx.context)
        let release = osRelease(root: root)
        var name = utsname()
        uname(&name)
        let kernel = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let uptime = Int64(ProcessInfo.processInfo.systemUptime)
        let bootTime = Processes.bootTime
        let host = ProcessInfo.processInfo.hostName
        let hostID = HostFS.lines("/etc/machine-id", root: root)?.first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
        let exe = HostFS.readlink(Array("/proc/self/exe".utf8)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let platform = release["ID"] ?? "linux"
        // A remapped session (remap() impersonation) reports the image's host, not this one.
        let impersonated = ctx.context.remapping.impersonation
        let values: [Value] = [
            .string(impersonated?.hostname ?? shortHostName(host)), .int(uptime), .int(Int64(bootTime)), .string(impersonated?.os ?? "linux"),
            .string(platform), .string(release["ID_LIKE"]?.split(separator: " ").first.map(String.init) ?? platform),
            .string(release["VERSION_ID"] ?? ""), .string(kernel), .string(architecture), .string(impersonated?.hostname ?? host),
            .string(hostID), .string(exe), .string(FileManager.default.currentDirectoryPath), .bool(geteuid() == 0),
            .from(ProcessInfo.processInfo.activeProcessorCount),
        ]
        return ArrayCursor([.dict(Dict(schema: Schema(infoColumns.map(\.name), caseInsensitiveFallback: true), values: values))])
    }

    /// The environment queries see: the process's, or the impersonated host's after remap().
    static func environment(_ context: QueryContext) -> [String: String] {
        context.remapping.impersonation?.environment ?? ProcessInfo.processInfo.environment
    }

    static func shortHostName(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, 255) == 0 {
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return name
    }

    static var architecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }

    /// KEY=value pairs of /etc/os-release (quotes removed).
    static func osRelease(root: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        let lines = HostFS.lines("/etc/os-release", root: root) ?? HostFS.lines("/usr/lib/os-release", root: root) ?? []
        for line in lines {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            result[String(line[..<eq])] = value
        }
        return result
    }

    public static let sysinfo = PluginDeclaration(
        name: "sysinfo", summary: "Memory and swap totals from /proc/meminfo (bytes).",
        columns: [
            ColumnSpec("MemTotal", .int, "Total RAM, bytes."), ColumnSpec("MemFree", .int, "Unused RAM, bytes."),
            ColumnSpec("MemAvailable", .int, "RAM available without swapping, bytes."),
            ColumnSpec("Buffers", .int, "Block-device buffers, bytes."), ColumnSpec("Cached", .int, "Page cache, bytes."),
            ColumnSpec("SwapTotal", .int, "Total swap, bytes."), ColumnSpec("SwapFree", .int, "Unused swap, bytes."),
            ColumnSpec("NumCPU", .int, "Online processors."), ColumnSpec("Uptime", .int, "Seconds since boot."),
        ],
        examples: ["SELECT MemTotal, SwapTotal FROM sysinfo()"],
        permissions: [.machineState]
    ) { _ in
        var meminfo: [String: Int64] = [:]
        let text = String(decoding: HostFS.procFile("/proc/meminfo") ?? [], as: UTF8.self)
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            guard parts.count >= 2, let n = Int64(parts[1]) else { continue }
            meminfo[String(parts[0])] = parts.count >= 3 && parts[2] == "kB" ? n * 1024 : n
        }
        let names = ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree"]
        var values: [Value] = names.map { meminfo[$0].map { .int($0) } ?? .null }
        values.append(.from(ProcessInfo.processInfo.activeProcessorCount))
        values.append(.int(Int64(ProcessInfo.processInfo.systemUptime)))
        return ArrayCursor([.dict(Dict(schema: Schema(names + ["NumCPU", "Uptime"], caseInsensitiveFallback: true), values: values))])
    }

    public static let environ = FunctionDeclaration(
        name: "environ", summary: "The value of one environment variable of this process (NULL when unset).",
        arguments: [ArgumentSpec("var", .string, required: true, "The variable name.")],
        returns: .string,
        examples: ["SELECT environ(var='PATH') AS Path FROM scope()"]
    ) { ctx in
        guard let name = ctx.string("var"), let value = environment(ctx.context)[name] else { return .null }
        return .string(value)
    }

    public static let environPlugin = PluginDeclaration(
        name: "environ", summary: "This process's environment: one row per variable (Name, Value), or only `vars`.",
        arguments: [ArgumentSpec("vars", .stringList, "Only these variables.")],
        columns: [ColumnSpec("Name", .string, "Variable name."), ColumnSpec("Value", .string, "Its value.")],
        examples: ["SELECT * FROM environ(vars='PATH')"]
    ) { ctx in
        let wanted = ctx.strings("vars").map(Set.init)
        let schema = Schema(["Name", "Value"], caseInsensitiveFallback: true)
        let rows = environment(ctx.context).sorted { $0.key < $1.key }
            .filter { wanted?.contains($0.key) ?? true }
            .map { Value.dict(Dict(schema: schema, values: [.string($0.key), .string($0.value)])) }
        return ArrayCursor(rows)
    }

    public static let kernelModules = PluginDeclaration(
        name: "kernel_modules", summary: "Loaded kernel modules from /proc/modules.",
        columns: [
            ColumnSpec("Name", .string, "Module name."), ColumnSpec("Size", .int, "Memory size, bytes."),
            ColumnSpec("UseCount", .int, "Reference count."), ColumnSpec("UsedBy", .list, "Modules using it."),
            ColumnSpec("Status", .string, "Live, Loading or Unloading."), ColumnSpec("Address", .string, "Load address."),
        ],
        examples: ["SELECT Name, Size FROM kernel_modules()"],
        permissions: [.machineState]
    ) { ctx in
        guard let bytes = HostFS.procFile("/proc/modules") else {
            ctx.context.logOnce(.info, "kernel_modules: /proc/modules is not available (kernel without modules)")
            return ArrayCursor([])
        }
        let schema = Schema(["Name", "Size", "UseCount", "UsedBy", "Status", "Address"], caseInsensitiveFallback: true)
        var rows: [Value] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 6 else { continue }
            let usedBy = f[3] == "-" ? [] : f[3].split(separator: ",").filter { !$0.isEmpty }.map { Value.string(String($0)) }
            rows.append(.dict(Dict(schema: schema, values: [
                .string(f[0]), .int(Int64(f[1]) ?? 0), .int(Int64(f[2]) ?? 0), .list(usedBy), .string(f[4]), .string(f[5]),
            ])))
        }
        return ArrayCursor(rows)
    }
}

/// `mounts()`: mounted file systems from /proc/self/mountinfo (falling back to /proc/mounts).
public enum MountsPlugin {
    public static let plugin = PluginDeclaration(
        name: "mounts", summary: "Mounted file systems: device, mount point, type, options.",
        columns: [
            ColumnSpec("Device", .string, "The mounted device or source."),
            ColumnSpec("Mountpoint", .string, "Where it is mounted."),
            ColumnSpec("Type", .string, "File system type."),
            ColumnSpec("Opts", .string, "Mount options."),
            ColumnSpec("Root", .string, "Root of the mount within its file system (mountinfo only)."),
            ColumnSpec("MajorMinor", .string, "Device numbers (mountinfo only)."),
        ],
        examples: ["SELECT Mountpoint, Type FROM mounts() WHERE Mountpoint = '/'"],
        permissions: [.machineState]
    ) { _ in
        let schema = Schema(["Device", "Mountpoint", "Type", "Opts", "Root", "MajorMinor"], caseInsensitiveFallback: true)
        var rows: [Value] = []
        if let bytes = HostFS.procFile("/proc/self/mountinfo") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                guard let dash = f.firstIndex(of: "-"), dash + 2 < f.count, f.count > 5 else { continue }
                rows.append(.dict(Dict(schema: schema, values: [
                    .string(unescape(f[dash + 2])), .string(unescape(f[4])), .string(f[dash + 1]),
                    .string(f[5] + (dash + 3 < f.count ? "," + f[dash + 3] : "")), .string(unescape(f[3])), .string(f[2]),
                ])))
            }
        } else if let bytes = HostFS.procFile("/proc/mounts") {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                guard f.count >= 4 else { continue }
                rows.append(.dict(Dict(schema: schema, values: [
                    .string(unescape(f[0])), .string(unescape(f[1])), .string(f[2]), .string(f[3]), .null, .null,
                ])))
            }
        }
        return ArrayCursor(rows)
    }

    /// Undoes the kernel's octal escapes (`\040` for a space) in mount fields.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let n = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(n)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
