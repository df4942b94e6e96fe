import Foundation
import Synchronization
import VQL

/// parse_binary(): lays a struct of a binary profile (Velociraptor's JSON profile language) over
/// a file or string. The result is an object whose fields are read as they are used.
public enum ParseBinaryFunction {
    /// Compiled profiles of one session, by profile text (artifacts call parse_binary thousands
    /// of times with the same profile).
    final class ProfileCache: Sendable {
        private let table = Mutex<[String: BinaryProfile]>([:])

        func profile(_ text: String) throws -> BinaryProfile {
            if let cached = table.withLock({ $0[text] }) { return cached }
            let compiled = try BinaryProfile.compile(text)
            table.withLock { table in
                if table.count > 64 { table.removeAll() }
                table[text] = compiled
            }
            return compiled
        }

        static func of(_ context: QueryContext) -> ProfileCache {
            if let cache = context.service("parse_binary.profiles", as: ProfileCache.self) { return cache }
            let cache = ProfileCache()
            context.setService("parse_binary.profiles", cache)
            return cache
        }
    }

    public static let function = FunctionDeclaration(
        name: "parse_binary",
        summary: "Parses binary data with a profile: a JSON list of struct definitions [Name, Size, [[Field, Offset, Type, Options]…]]. Types: integers (uint8…int64, big-endian with a b suffix), String, Array, Pointer, Enumeration, Flags, BitField, Union, Value, Timestamp, WinFileTime, Profile and other structs; offsets, sizes and counts may be lambdas over earlier fields.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The file (or, with accessor='data', the bytes) to parse."),
            ArgumentSpec("accessor", .string, "How to read filename: file (default) or data."),
            ArgumentSpec("profile", .string, "The profile (JSON, comments and trailing commas allowed)."),
            ArgumentSpec("struct", .string, required: true, "The struct (or type) to lay over the data."),
            ArgumentSpec("offset", .int, "Where the struct starts (default 0)."),
            ArgumentSpec("env", .dict, "Extra variables the profile's lambdas can read."),
        ],
        returns: .dict,
        examples: [
            """
            SELECT parse_binary(accessor='data', filename=unhex(string='0500000068656c6c6f'), struct='Rec',
              profile='[["Rec", 0, [["Len", 0, "uint32"], ["Name", 4, "String", {"length": "x=>x.Len"}]]]]') AS Rec FROM scope()
            """,
        ],
        permissions: [.filesystemRead]
    ) { ctx in
        guard let structName = ctx.string("struct") else { return .null }
        let profile: BinaryProfile
        do {
            profile = try ctx.string("profile").map { try ProfileCache.of(ctx.context).profile($0) } ?? .empty
        } catch {
            ctx.context.logOnce(.error, "parse_binary: \(error)")
            return .null
        }
        guard let source = ParserInput.open(ctx, "filename") else { return .null }
        // Lambdas run in the call's scope, without its SELECT's computed columns (which hold the
        // result: see Env.withoutProjection).
        var env = ctx.env.withoutProjection()
        if case .dict(let extra)? = ctx.value("env") {
            var variables: [String: Binding] = [:]
            for (name, value) in extra.pairs { variables[name] = .value(value) }
            env = env.child(variables: variables)
        }
        let offset = ctx.int("offset") ?? 0
        let parse = BinaryParse(profile: profile, source: source, env: env, context: ctx.context)
        let type: BinaryType
        if profile.structs[structName] != nil {
            type = .structure(structName)
        } else if let builtin = try? BinaryProfile.compileType(structName, Dict(), context: structName), !isStructure(builtin) {
            type = builtin
        } else {
            ctx.context.logOnce(.error, "parse_binary: no struct named '\(structName)' in the profile")
            return .null
        }
        parse.lock.lock()
        defer { parse.lock.unlock() }
        return parse.parse(type, at: offset, parent: .null, depth: 0)
    }

    static func isStructure(_ type: BinaryType) -> Bool {
        if case .structure = type { return true }
        return false
    }
}
