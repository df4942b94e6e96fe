import Foundation

/// mock(), mock_check(), mock_clear() and mock_replay(): replace a plugin, function or artifact
/// for the rest of the session with canned results, then check how often it was called — for
/// testing artifacts away from the host they were written for (see SessionMocks).
public enum MockFunctions {
    public static var all: [FunctionDeclaration] { [mock, check, clear, replay] }

    /// The mocked name and kind from plugin= / function= / artifact=; nil (logged) when none.
    static func target(_ ctx: CallContext, allowArtifact: Bool) -> (SessionMocks.Kind, String)? {
        if let plugin = ctx.string("plugin"), !plugin.isEmpty { return (.plugin, plugin) }
        if let function = ctx.string("function"), !function.isEmpty { return (.function, function) }
        if allowArtifact, let artifact = ctx.value("artifact"), let name = artifact.stringValue ?? artifact.member("name").stringValue, !name.isEmpty {
            return (.plugin, name.hasPrefix("Artifact.") ? name : "Artifact." + name)
        }
        ctx.log(.error, "\(ctx.name): give plugin=, function=\(allowArtifact ? " or artifact=" : "")")
        return nil
    }

    public static let mock = FunctionDeclaration(
        name: "mock",
        summary: "Replaces a plugin, function or artifact for the rest of the session: each call takes the next of `results` (for a plugin, a list is that call's rows). Returns TRUE.",
        arguments: [
            ArgumentSpec("plugin", .string, "The plugin to replace."),
            ArgumentSpec("function", .string, "The function to replace."),
            ArgumentSpec("artifact", .any, "The artifact to replace (its name)."),
            ArgumentSpec("results", .any, required: true, "One entry per call: a plugin call's rows (a list, or one row), or a function call's value."),
        ],
        returns: .bool,
        examples: [
            "SELECT mock(plugin='info', results=[[dict(OS='windows', Hostname='test')]]) FROM scope()",
            "SELECT mock(function='now', results=[1700000000, 1700000060]) FROM scope()",
        ]
    ) { ctx in
        guard let (kind, name) = target(ctx, allowArtifact: true) else { return .bool(false) }
        let results: [Value]
        switch ctx.value("results") ?? .null {
        case .list(let items): results = items
        case .query(let stored): results = stored.materialize()
        case .null: results = []
        case let single: results = [single]
        }
        ctx.context.mocks.install(kind, name, results: results)
        return .bool(true)
    }

    public static let check = FunctionDeclaration(
        name: "mock_check",
        summary: "Checks how often a mocked plugin or function was called: TRUE when it was called expected_calls times (an error is logged otherwise); clear=TRUE removes the mock.",
        arguments: [
            ArgumentSpec("plugin", .string, "The mocked plugin."),
            ArgumentSpec("function", .string, "The mocked function."),
            ArgumentSpec("expected_calls", .int, "How many calls there should have been."),
            ArgumentSpec("clear", .bool, "Remove the mock afterwards."),
        ],
        returns: .bool,
        examples: ["SELECT mock(function='now', results=[1]) AND now() = 1 AND mock_check(function='now', expected_calls=1) AS Ok FROM scope()"]
    ) { ctx in
        guard let (kind, name) = target(ctx, allowArtifact: false) else { return .bool(false) }
        defer { if ctx.bool("clear") == true { ctx.context.mocks.remove(kind, name) } }
        guard let calls = ctx.context.mocks.calls(kind, name) else {
            ctx.log(.error, "mock_check: \(kind.rawValue) \(name) is not mocked")
            return .bool(false)
        }
        if let expected = ctx.int("expected_calls"), Int64(calls) != expected {
            ctx.log(.error, "mock_check: \(kind.rawValue) \(name) was called \(calls) times, expected \(expected)")
            return .bool(false)
        }
        return .bool(true)
    }

    public static let clear = FunctionDeclaration(
        name: "mock_clear",
        summary: "Removes every mock of the session (the real plugins and functions answer again). Returns TRUE.",
        returns: .bool,
        examples: ["SELECT mock_clear() FROM scope()"]
    ) { ctx in
        ctx.context.mocks.removeAll()
        return .bool(true)
    }

    public static let replay = FunctionDeclaration(
        name: "mock_replay",
        summary: "Starts a mock's results from the first again, so the same calls can be replayed; clear=TRUE removes it instead. Returns TRUE when the name is mocked.",
        arguments: [
            ArgumentSpec("plugin", .string, "The mocked plugin."),
            ArgumentSpec("function", .string, "The mocked function."),
            ArgumentSpec("expected_calls", .int, "Accepted for compatibility."),
            ArgumentSpec("clear", .bool, "Remove the mock instead."),
        ],
        returns: .bool,
        examples: ["SELECT mock(function='rand', results=[4]) AND mock_replay(function='rand') FROM scope()"]
    ) { ctx in
        guard let (kind, name) = target(ctx, allowArtifact: false) else { return .bool(false) }
        if ctx.bool("clear") == true {
            ctx.context.mocks.remove(kind, name)
            return .bool(true)
        }
        return .bool(ctx.context.mocks.rewind(kind, name))
    }
}
