import Foundation
import VQL
import Yams

/// `remap(config=, copy=, clear=)`: dead-disk analysis without changing the artifacts. A YAML
/// remapping configuration (Velociraptor's format) rewires the rest of the session:
/// - `mount`: a subtree of one accessor appears at a prefix of another (`from` → `on`), e.g. the
///   folder where an image is mounted becomes `/` of the `file` accessor;
/// - `shadow`: an accessor name reaches another accessor as it was before the remapping;
/// - `permissions`: the session keeps only these permissions (never gains one);
/// - `impersonation`: info() and the environment report the image's host, and the named plugins
///   and functions (those that would describe the live machine instead) are refused.
/// With `clear=TRUE` only what the configuration mounts or shadows (and `copy=`) exists afterwards.
public enum RemapFunction {
    /// A configuration larger than this is refused (it is read whole).
    static let maximumConfigBytes = 1 << 20

    public static let declaration = FunctionDeclaration(
        name: "remap", summary: "Applies a remapping configuration (YAML: mount, shadow, permissions, impersonation) to the rest of the session.",
        arguments: [
            ArgumentSpec("config", .string, required: true, "The remapping configuration, YAML with a `remappings` list."),
            ArgumentSpec("copy", .stringList, "Accessors kept under their own names (with clear)."),
            ArgumentSpec("clear", .bool, "Start from no accessors at all instead of the current ones."),
        ],
        returns: .any,
        examples: [
            """
            LET _ <= remap(config='remappings:\\n- type: mount\\n  from: {accessor: file, prefix: /etc}\\n  "on": {accessor: file, prefix: /config}\\n', clear=TRUE)
            SELECT OSPath FROM glob(globs='/config/host*')
            """,
        ]
    ) { ctx in
        guard let text = ctx.string("config") else { return .null }
        do {
            let config = try RemapConfig.parse(text)
            return .list(try apply(config, copy: ctx.strings("copy") ?? [], clear: ctx.bool("clear") ?? false, context: ctx.context).map { .string($0) })
        } catch {
            ctx.log(.error, "remap: \(error)")
            return .null
        }
    }

    /// Applies `config` to the session; returns the accessor names it mounted or shadowed.
    static func apply(_ config: RemapConfig, copy: [String], clear: Bool, context: QueryContext) throws -> [String] {
        // `from` sides are the accessors as they were before this call.
        func original(_ name: String) throws -> any Accessor {
            guard let accessor = context.accessor(named: name) else { throw RemapError("unknown accessor '\(name)'") }
            return accessor
        }
        let previous = context.remapping.accessors
        // Names as they resolve now, before this remapping (a snapshot, not the live table).
        let registry = context.registry
        let before: @Sendable (String) -> (any Accessor)? = { name in
            if let previous, let found = previous.named[name] { return found }
            if previous?.cleared == true { return nil }
            return registry.accessors[name]
        }
        var named: [String: any Accessor] = clear ? [:] : (previous?.named ?? [:])
        for name in copy { named[name] = try original(name) }
        var touched: [String] = []
        var mounted: [String: MountAccessor] = [:]
        for remapping in config.mounts {
            let source = try original(remapping.from.accessor)
            let type = remapping.on.pathType.map(PathType.init(name:)) ?? .linux
            let mount = MountAccessor.Mount(
                prefix: OSPath.split(Array(remapping.on.prefix.utf8), type: type), accessor: source,
                source: source.parse(Array(remapping.from.prefix.utf8)), names: before)
            let name = remapping.on.accessor
            mounted[name] = mounted[name]?.adding(mount) ?? MountAccessor(name: name, pathType: type, mounts: [mount])
        }
        for (name, accessor) in mounted {
            named[name] = accessor
            touched.append(name)
        }
        // On Linux the default accessor is the file accessor: a remapped `file` is also what
        // queries that name no accessor read, unless the configuration mounts `auto` itself.
        if let file = mounted["file"], mounted["auto"] == nil {
            named["auto"] = RenamedAccessor(name: "auto", base: file)
        }
        for shadow in config.shadows {
            let source = try original(shadow.from)
            named[shadow.on] = source.name == shadow.on ? source : RenamedAccessor(name: shadow.on, base: source)
            touched.append(shadow.on)
        }
        if clear || previous != nil || !touched.isEmpty || !copy.isEmpty {
            context.remapping.setAccessors(.init(named: named, cleared: clear || (previous?.cleared ?? false)))
        }
        if let permissions = config.permissions {
            // Never more than the session had: a remapping narrows, it does not grant.
            context.permissions = context.permissions.intersection(permissions.compactMap(Permission.init(rawValue:)))
        }
        if let impersonation = config.impersonation {
            context.remapping.impersonate(impersonation.host)
            context.remapping.disable(impersonation.disabledPlugins + impersonation.disabledFunctions)
        }
        return touched.sorted()
    }
}

struct RemapError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A remapping configuration as read from YAML.
struct RemapConfig {
    struct Side {
        var accessor: String
        var prefix: String
        var pathType: String?
    }
    struct Mount {
        var from: Side
        var on: Side
    }
    struct Impersonation {
        var host: SessionRemapping.Impersonation
        var disabledPlugins: [String]
        var disabledFunctions: [String]
    }

    var mounts: [Mount] = []
    var shadows: [(from: String, on: String)] = []
    var permissions: [String]?
    var impersonation: Impersonation?

    static func parse(_ text: String) throws -> RemapConfig {
        guard text.utf8.count <= RemapFunction.maximumConfigBytes else { throw RemapError("the configuration is over 1 MiB") }
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw RemapError("the configuration is not valid YAML: \(error)")
        }
        guard let root = normalized(loaded) as? [String: Any], let list = root["remappings"] as? [Any] else {
            throw RemapError("the configuration needs a `remappings` list")
        }
        var config = RemapConfig()
        for (index, item) in list.enumerated() {
            guard let entry = item as? [String: Any], let type = entry["type"] as? String else {
                throw RemapError("remapping \(index + 1) has no type")
            }
            switch type.lowercased() {
            case "mount":
                config.mounts.append(Mount(from: try side(entry["from"], "from", index), on: try side(entry["on"], "on", index)))
            case "shadow":
                config.shadows.append((try side(entry["from"], "from", index).accessor, try side(entry["on"], "on", index).accessor))
            case "permissions":
                config.permissions = (config.permissions ?? []) + strings(entry["permissions"])
            case "impersonation":
                var environment: [String: String] = [:]
                for pair in entry["env"] as? [Any] ?? [] {
                    if let pair = pair as? [String: Any], let key = pair["key"].map(describe) { environment[key] = pair["value"].map(describe) ?? "" }
                }
                config.impersonation = Impersonation(
                    host: .init(os: entry["os"].map(describe), hostname: entry["hostname"].map(describe), environment: environment),
                    disabledPlugins: strings(entry["disabled_plugins"]), disabledFunctions: strings(entry["disabled_functions"]))
            default:
                throw RemapError("remapping \(index + 1): unknown type '\(type)' (mount, shadow, permissions or impersonation)")
            }
        }
        return config
    }

    /// Maps with string keys all the way down; YAML 1.1 reads an unquoted `on:` key as `true`.
    private static func normalized(_ value: Any?, depth: Int = 0) -> Any? {
        guard depth < 32 else { return nil }
        if let map = value as? [AnyHashable: Any] {
            var out: [String: Any] = [:]
            for (key, item) in map {
                let name: String
                if let flag = key.base as? Bool { name = flag ? "on" : "off" } else { name = describe(key.base) }
                out[name] = normalized(item, depth: depth + 1)
            }
            return out
        }
        if let list = value as? [Any] { return list.map { normalized($0, depth: depth + 1) as Any } }
        return value
    }

    private static func side(_ value: Any?, _ key: String, _ index: Int) throws -> Side {
        guard let map = value as? [String: Any] else { throw RemapError("remapping \(index + 1) needs `\(key)`") }
        guard let accessor = map["accessor"].map(describe), !accessor.isEmpty else {
            throw RemapError("remapping \(index + 1): `\(key)` needs an accessor")
        }
        return Side(accessor: accessor, prefix: map["prefix"].map(describe) ?? "", pathType: map["path_type"].map(describe))
    }

    private static func strings(_ value: Any?) -> [String] {
        (value as? [Any])?.map(describe) ?? []
    }

    private static func describe(_ value: Any) -> String {
        if let text = value as? String { return text }
        return "\(value)"
    }
}
