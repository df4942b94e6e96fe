/// Work only the fleet server can do for a query that runs elsewhere (`quarry query --server`
/// runs in the analyst's process): the fleet module fills these in, and plugins that know nothing
/// of the fleet ask for them by their typed keys.
public enum RemoteServices {
    /// Decrypts an uploaded encrypted storage file (named by its `fs` accessor path) with the
    /// server's key, which never leaves the server, and returns its rows.
    public struct StorageDecryptor: Sendable {
        public let rows: @Sendable (String) throws -> [Value]
        public init(rows: @escaping @Sendable (String) throws -> [Value]) { self.rows = rows }
    }

    public static let storageDecryptor = ServiceKey<StorageDecryptor>("fleet.storage-decryptor")
}
