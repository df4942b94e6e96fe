/// Where upload() puts files: a folder for standalone `quarry query --upload-dir`, the collection
/// container for `quarry artifacts collect`. Implementations must keep names inside themselves.
public protocol UploadDestination: AnyObject, Sendable {
    /// Stores the bytes `reader` yields (it fills the buffer and returns the count; 0 ends) under
    /// `name`; returns the stored relative path, size and digests.
    func store(name: String, reader: (inout [UInt8]) throws -> Int) throws -> (path: String, size: Int64, sha256: String, md5: String)
}

/// The service key under which a session's upload destination is registered.
public enum UploadService {
    public static let key = "upload.destination"
}
