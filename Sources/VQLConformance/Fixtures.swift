import Synchronization
import VQL

/// The fixture environment the vfilter corpus assumes: test plugins, functions and variables.
/// Built fresh for every case (the ObjectWithMethods counter is process-global, as in the original).
public enum Fixtures {
    /// Set when a `panic()` trap fired: something was evaluated that must not have been.
    public static let panicked = Mutex<[String]>([])
    static let methodCounter = Mutex<Int>(0)

    public static func registry() -> Registry {
        let registry = CoreLibrary.registry()
        registry.add(plugins: plugins, functions: functions)
        return registry
    }

    public static func session(logger: QueryLogger) -> Session {
        let session = Session(registry: registry(), logger: logger)
        let rootEnv = RootEnvObject()
        let values: [(String, Value)] = [
            ("const_foo", .int(1)),
            ("three_int64", .int(3)),
            ("my_list_obj", .dict(Dict([("my_list", .list([.int(1), .int(2), .int(3), .dict(Dict([("Foo", .string("Bar"))]))]))]))),
            ("env_var", .string("EnvironmentData")),
            ("foo", .dict(Dict([("bar", .dict(Dict([("baz", .int(5))]))), ("bar2", .int(7))]))),
        ]
        for (name, value) in values {
            session.root.set(name, value)
            rootEnv.set(name, value)
        }
        session.root.set("RootEnv", .object(rootEnv))
        session.root.set("ArrayValue", .list([.int(1), .int(2), .int(3)]))
        session.root.set("StructValue", .object(StructValue()))
        session.root.set("VarIsObjectWithMethods", .object(ObjectWithMethods(value1: 1, cached: false)))
        session.context.setService("fixtures.rootEnv", rootEnv)
        return session
    }

    static let plugins: [PluginDeclaration] = [
        PluginDeclaration(name: "test", summary: "Three fixed rows of foo and bar.") { _ in
            let schema = Schema(["foo", "bar"])
            return ArrayCursor((0..<3).map { .dict(Dict(schema: schema, values: [.int(Int64($0 * 2)), .int(Int64($0))])) })
        },
        PluginDeclaration(name: "range", summary: "value from start to end inclusive (floats).", strictArguments: false) { ctx in
            let start = ctx.int("start") ?? 0
            let end = ctx.int("end") ?? 0
            let schema = Schema(["value"])
            var v = start
            return GeneratorCursor {
                guard v <= end else { return nil }
                defer { v += 1 }
                return .dict(Dict(schema: schema, values: [.double(Double(v))]))
            }
        },
        PluginDeclaration(name: "dict", summary: "One row of the arguments.", strictArguments: false) { ctx in
            var dict = Dict()
            for (k, v) in ctx.allArguments() {
                if case .query = v { dict[k] = v } else { dict[k] = v.reduced() }
            }
            return ArrayCursor([.dict(dict)])
        },
        PluginDeclaration(name: "groupbytest", summary: "Four rows for GROUP BY tests.") { _ in
            let schema = Schema(["foo", "bar", "baz"])
            let rows: [(Int64, Int64, String)] = [(1, 5, "a"), (2, 5, "b"), (3, 2, "c"), (4, 2, "d")]
            return ArrayCursor(rows.map { .dict(Dict(schema: schema, values: [.int($0.0), .int($0.1), .string($0.2)])) })
        },
        PluginDeclaration(name: "reset_objectwithmethods", summary: "Resets the method counter.") { _ in
            methodCounter.withLock { $0 = 0 }
            return ArrayCursor([])
        },
        PluginDeclaration(name: "objectwithmethods", summary: "Two objects with lazy methods.") { _ in
            ArrayCursor([.object(ObjectWithMethods(value1: 1, cached: true)), .object(ObjectWithMethods(value1: 2, cached: true))])
        },
    ]

    static let functions: [FunctionDeclaration] = [
        FunctionDeclaration(name: "func_foo", summary: "Returns `return`, or 1.", strictArguments: false) { ctx in
            ctx.value("return") ?? .int(1)
        },
        FunctionDeclaration(
            name: "set_env", summary: "Sets RootEnv[column] = value.",
            arguments: [ArgumentSpec("column", .string, required: true, ""), ArgumentSpec("value", .any, "")]
        ) { ctx in
            guard let column = ctx.string("column") else { return .null }
            let value = (ctx.raw("value") ?? .null).reduced().materialized()
            ctx.context.service("fixtures.rootEnv", as: RootEnvObject.self)?.set(column, value)
            ctx.env.root.set(column, value)
            return .bool(true)
        },
        FunctionDeclaration(
            name: "panic", summary: "Fails the case when value equals column.",
            arguments: [ArgumentSpec("column", .any, ""), ArgumentSpec("value", .any, "")]
        ) { ctx in
            let column = ctx.value("column") ?? .null
            let value = ctx.value("value") ?? .null
            if Value.vqlEqual(column, value) {
                panicked.withLock { $0.append("panic(column=\(JSONWriter.string(column)), value=\(JSONWriter.string(value)))") }
            }
            return value
        },
        FunctionDeclaration(name: "counter", summary: "A global counter.") { _ in
            .int(Int64(methodCounter.withLock { $0 += 1; return $0 }))
        },
    ]
}

/// The mutable dict behind `RootEnv`.
final class RootEnvObject: HostObject, @unchecked Sendable {
    private let storage = Mutex<Dict>(Dict())
    var typeName: String { "dict" }
    var memberNames: [String] { storage.withLock { $0.keys } }
    func member(_ name: String) -> Value? { storage.withLock { $0[name] } }
    func set(_ name: String, _ value: Value) { storage.withLock { $0[name] = value } }
}

/// A struct with one field whose JSON name differs from its field name.
final class StructValue: HostObject {
    var typeName: String { "StructValue" }
    var memberNames: [String] { ["src_ip"] }
    func member(_ name: String) -> Value? {
        name == "SrcIP" || name == "src_ip" ? .string("127.0.0.1") : nil
    }
}

/// An object whose `Value2` runs a method that bumps a global counter.
final class ObjectWithMethods: HostObject, @unchecked Sendable {
    let value1: Int64
    let cached: Bool
    private let cache = Mutex<Value?>(nil)

    init(value1: Int64, cached: Bool) {
        self.value1 = value1
        self.cached = cached
    }

    var typeName: String { "ObjectWithMethods" }
    var memberNames: [String] { ["Value1", "Value2", "Counter"] }

    func member(_ name: String) -> Value? {
        switch name {
        case "Value1": return .int(value1)
        case "Value2":
            if cached, let v = cache.withLock({ $0 }) { return v }
            let n = Fixtures.methodCounter.withLock { $0 += 1; return $0 }
            let v = Value.string("I am a method, called \(n)")
            if cached { cache.withLock { $0 = v } }
            return v
        case "Counter": return .int(Int64(Fixtures.methodCounter.withLock { $0 }))
        default: return nil
        }
    }
}
