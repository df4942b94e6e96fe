/// The type an argument or column is declared with; `describe` and docs print it, and argument
/// values are coerced to it.
public enum ValueType: String, Sendable {
    case any, string, int, float, bool, timestamp, list, dict, query, lambda
    case stringList = "list of string"
    case object
}

/// One declared argument of a plugin or function.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var type: ValueType
    public var required: Bool
    public var doc: String

    public init(_ name: String, _ type: ValueType, required: Bool = false, _ doc: String) {
        self.name = name
        self.type = type
        self.required = required
        self.doc = doc
    }
}

/// One declared output column of a plugin.
public struct ColumnSpec: Sendable {
    public var name: String
    public var type: ValueType
    public var doc: String

    public init(_ name: String, _ type: ValueType, _ doc: String = "") {
        self.name = name
        self.type = type
        self.doc = doc
    }
}

/// Capabilities a plugin or function needs; fleet collections hold only what their artifact
/// declares, standalone `quarry query` holds all.
public enum Permission: String, Sendable, CaseIterable {
    case execve = "EXECVE"
    case filesystemRead = "FILESYSTEM_READ"
    case filesystemWrite = "FILESYSTEM_WRITE"
    case machineState = "MACHINE_STATE"
    case network = "NETWORK"
    /// Acting on the endpoint: killing processes, quarantining files, isolating the host.
    case remediation = "REMEDIATION"
}

/// A plugin: a row source used after FROM. Everything about it lives in this one declaration:
/// name, docs, typed arguments, columns, examples (which run as tests) and the row producer.
public struct PluginDeclaration: Sendable {
    public var name: String
    public var summary: String
    public var arguments: [ArgumentSpec]
    public var columns: [ColumnSpec]
    public var examples: [String]
    public var permissions: [Permission]
    /// When false, unknown arguments are accepted silently (plugins that take free-form arguments).
    public var strictArguments: Bool
    public var open: @Sendable (CallContext) throws -> RowCursor

    public init(
        name: String, summary: String, arguments: [ArgumentSpec] = [], columns: [ColumnSpec] = [],
        examples: [String] = [], permissions: [Permission] = [], strictArguments: Bool = true,
        open: @escaping @Sendable (CallContext) throws -> RowCursor
    ) {
        self.name = name
        self.summary = summary
        self.arguments = arguments
        self.columns = columns
        self.examples = examples
        self.permissions = permissions
        self.strictArguments = strictArguments
        self.open = open
    }
}

/// A function callable in expressions. Aggregates keep state per call site (see `CallContext.state`).
public struct FunctionDeclaration: Sendable {
    public var name: String
    public var summary: String
    public var arguments: [ArgumentSpec]
    public var returns: ValueType
    public var examples: [String]
    public var isAggregate: Bool
    public var permissions: [Permission]
    public var strictArguments: Bool
    public var call: @Sendable (CallContext) -> Value
    /// Optional bind-time specialisation: given the arguments that are constants, return a faster
    /// call (format() parses a constant format string once here), or nil to use `call`.
    public var specialize: (@Sendable ([String: Value]) -> (@Sendable (CallContext) -> Value)?)?

    public init(
        name: String, summary: String, arguments: [ArgumentSpec] = [], returns: ValueType = .any,
        examples: [String] = [], isAggregate: Bool = false, permissions: [Permission] = [],
        strictArguments: Bool = true,
        specialize: (@Sendable ([String: Value]) -> (@Sendable (CallContext) -> Value)?)? = nil,
        call: @escaping @Sendable (CallContext) -> Value
    ) {
        self.specialize = specialize
        self.name = name
        self.summary = summary
        self.arguments = arguments
        self.returns = returns
        self.examples = examples
        self.isAggregate = isAggregate
        self.permissions = permissions
        self.strictArguments = strictArguments
        self.call = call
    }
}

/// The one explicit list of plugins and functions a session can use. Modules contribute their
/// declarations as arrays; nothing registers itself at start-up. Names that are not in the
/// table can be served by resolvers (e.g. `Artifact.*` from the artifact repository).
public final class Registry: @unchecked Sendable {
    public private(set) var plugins: [String: PluginDeclaration] = [:]
    public private(set) var functions: [String: FunctionDeclaration] = [:]
    /// The accessors path-taking plugins and functions can name in `accessor=` (see Accessor).
    public private(set) var accessors: [String: any Accessor] = [:]
    private var pluginResolvers: [@Sendable (String) -> PluginDeclaration?] = []

    public init(plugins: [PluginDeclaration] = [], functions: [FunctionDeclaration] = [], accessors: [any Accessor] = []) {
        add(plugins: plugins, functions: functions, accessors: accessors)
    }

    /// Adds declarations; a later declaration with the same name replaces an earlier one.
    public func add(plugins: [PluginDeclaration] = [], functions: [FunctionDeclaration] = [], accessors: [any Accessor] = []) {
        for p in plugins { self.plugins[p.name] = p }
        for f in functions { self.functions[f.name] = f }
        for a in accessors { self.accessors[a.name] = a }
    }

    /// Serves plugin names not in the table (used for `Artifact.NAME`).
    public func addPluginResolver(_ resolver: @escaping @Sendable (String) -> PluginDeclaration?) {
        pluginResolvers.append(resolver)
    }

    public func plugin(_ name: String) -> PluginDeclaration? {
        if let p = plugins[name] { return p }
        for resolver in pluginResolvers {
            if let p = resolver(name) { return p }
        }
        return nil
    }

    public func function(_ name: String) -> FunctionDeclaration? { functions[name] }
}
