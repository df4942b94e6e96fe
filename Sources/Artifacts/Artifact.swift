import VQL

/// One artifact definition, in Velociraptor's format: a named, documented, parameterised set of
/// VQL sources. Unknown keys are kept (and reported) so nothing in a file is silently dropped.
public struct Artifact: Sendable {
    /// Where collections run: on an endpoint (CLIENT), on the server, or as event streams.
    public enum Kind: String, Sendable, CaseIterable {
        case client = "CLIENT", clientEvent = "CLIENT_EVENT", server = "SERVER", serverEvent = "SERVER_EVENT"
        case notebook = "NOTEBOOK", internalType = "INTERNAL"
    }

    /// A declared parameter; every value arrives as text and is converted by type at compile time.
    public struct Parameter: Sendable {
        public var name: String
        public var defaultValue: String?
        public var description: String?
        public var type: String
        public var choices: [String]
    }

    /// One query of the artifact, with an optional precondition.
    public struct Source: Sendable {
        public var name: String?
        public var precondition: String?
        public var query: String
        public var notebook: [String]
    }

    public var name: String
    public var description: String?
    public var author: String?
    public var reference: [String]
    public var type: Kind
    public var aliases: [String]
    public var precondition: String?
    public var parameters: [Parameter]
    public var sources: [Source]
    public var export: String?
    public var imports: [String]
    public var tools: [String]
    public var resources: [String: String]
    public var columnTypes: [String: String]
    public var requiredPermissions: [String]
    public var impliedPermissions: [String]
    /// Keys this version does not model, kept as text.
    public var unknownKeys: [String]
    /// Where the definition came from (file name or "built-in").
    public var origin: String
    /// The raw YAML text.
    public var text: String

    /// Parameter types Quarry understands (Velociraptor's set).
    public static let parameterTypes: Set<String> = [
        "string", "int", "int64", "bool", "regex", "regex_array", "yara", "timestamp", "csv", "json", "json_array",
        "choices", "hidden", "upload", "upload_file", "float", "multichoice", "artifactset", "server_metadata", "redacted",
        "glob", "str", "integer", "notebook",
    ]
}
