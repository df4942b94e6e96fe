import Synchronization
import VQL

/// Parsed containers (zip directories, ext4 volumes) kept for the session, keyed by the
/// delegate that holds them, so a glob over a zip followed by a read of each hit parses the zip
/// once. Least recently used containers are dropped past `capacity`.
final class ArchiveCache: Sendable {
    static let key = ServiceKey<ArchiveCache>("accessors.archives")
    static let capacity = 16

    private struct Item: @unchecked Sendable {
        var key: String
        var value: AnyObject
    }

    private let items = Mutex<[Item]>([])

    static func of(_ scope: AccessorScope) -> ArchiveCache {
        scope.context.service(key, orMake: { ArchiveCache() })
    }

    /// The cached container for `key`, or a new one from `make` (built outside the lock: making
    /// a nested container reads through its parent, which uses this cache too).
    func get<T: AnyObject>(_ key: String, make: () throws -> T) throws -> T {
        let found: T? = items.withLock { items in
            guard let index = items.firstIndex(where: { $0.key == key }), let value = items[index].value as? T else { return nil }
            let item = items.remove(at: index)
            items.append(item)
            return value
        }
        if let found { return found }
        let made = try make()
        items.withLock { items in
            items.removeAll { $0.key == key }
            items.append(Item(key: key, value: made))
            if items.count > ArchiveCache.capacity { items.removeFirst(items.count - ArchiveCache.capacity) }
        }
        return made
    }
}

extension AccessorScope {
    /// A key naming the container a delegated path reads from.
    func containerKey(_ path: OSPath, kind: String) -> String {
        kind + "\u{0}" + (path.delegate?.accessor ?? "") + "\u{0}" + String(decoding: path.delegate?.path ?? [], as: UTF8.self)
    }

    /// The passwords in ZIP_PASSWORDS (a string or a list of strings).
    var zipPasswords: [[UInt8]] {
        guard let value = env?.lookup("ZIP_PASSWORDS")?.reduced() else { return [] }
        if let items = value.listElements { return items.compactMap { $0.reduced().byteValue } }
        return value.byteValue.map { [$0] } ?? []
    }
}
