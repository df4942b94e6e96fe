import Foundation

/// Where a collection's rows live in its container, and how to read a source back whole.
///
/// Velociraptor's layout is `results/<Artifact>%2F<Source>.json` (JSON lines) with a `.json.index`
/// beside it (little-endian uint64 offsets of the rows). Quarry writes rows as the collection goes,
/// in chunks, so a killed collection keeps everything up to its last chunk: a source that ends
/// before its first chunk is due is written exactly in Velociraptor's layout; a longer one is
/// written as parts `results/<Artifact>%2F<Source>.part-000001.json`, `.part-000002.json`, … each a
/// complete JSON-lines file with its own `.json.index` (offsets within the part). The rows of the
/// source are the parts' rows in part order (`cat results/X.part-*.json` gives the single file
/// Velociraptor would have written). `collection show`, `query --collection` and the agent read
/// both forms through `sources`.
public enum ContainerLayout {
    /// `results/<label with / as %2F>`, without an extension.
    public static func base(label: String) -> String {
        "results/" + label.replacingOccurrences(of: "/", with: "%2F")
    }

    /// The member holding a source's rows: the whole source (`part` nil) or one part of it.
    public static func rows(label: String, part: Int?) -> String {
        base(label: label) + (part.map { ".part-" + String(repeating: "0", count: max(0, 6 - String($0).count)) + String($0) } ?? "") + ".json"
    }

    /// One source in a container: its label (`Artifact/Source`) and its row members in order.
    public struct Source: Sendable {
        public let label: String
        public let members: [String]
    }

    /// The sources whose rows a container holds, in the order they were written.
    public static func sources(_ reader: ZipReader) -> [Source] {
        var order: [String] = []
        var parts: [String: [(part: Int, member: String)]] = [:]
        for member in reader.members {
            guard let (label, part) = parse(member.name) else { continue }
            if parts[label] == nil { order.append(label) }
            parts[label, default: []].append((part, member.name))
        }
        return order.map { label in
            // A member written twice (a later copy wins in zip readers) counts once.
            var seen = Set<String>()
            let members = (parts[label] ?? []).sorted { $0.part < $1.part }.map(\.member).filter { seen.insert($0).inserted }
            return Source(label: label, members: members)
        }
    }

    /// (label, part number; 0 for a whole-source member) of a result member, nil for other members.
    static func parse(_ name: String) -> (String, Int)? {
        // Older Velociraptor collectors wrote `<Artifact>/<Source>.json` (or `<Artifact>.json`) at
        // the top: an artifact name has dots, the container's own files (log.json …) do not.
        if !name.hasPrefix("results/"), name.hasSuffix(".json"), !name.hasPrefix("uploads") {
            let stem = name.dropLast(".json".count)
            let parts = stem.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }), parts[0].contains(".") else { return nil }
            return (String(stem), 0)
        }
        guard name.hasPrefix("results/"), name.hasSuffix(".json") else { return nil }
        var stem = name.dropFirst("results/".count).dropLast(".json".count)
        var part = 0
        if let marker = stem.range(of: ".part-", options: .backwards), let number = Int(stem[marker.upperBound...]), number > 0 {
            part = number
            stem = stem[..<marker.lowerBound]
        }
        guard !stem.isEmpty else { return nil }
        return (stem.replacingOccurrences(of: "%2F", with: "/"), part)
    }

    /// Every row of a source, as JSON texts, read part after part from the file; `body` returns
    /// false to stop.
    /// A row longer than `maxRowBytes` (a member with no line break, as a zip bomb would have) is an
    /// error, never an unbounded buffer.
    public static func forEachRow(_ reader: ZipReader, _ source: Source, maxRowBytes: Int = 64 << 20, _ body: (ArraySlice<UInt8>) throws -> Bool) throws {
        for member in source.members {
            let stream = try reader.open(member)
            var carry: [UInt8] = []
            while let chunk = try stream.read(max: 1 << 20) {
                carry.append(contentsOf: chunk)
                if carry.count > maxRowBytes && !carry.contains(0x0A) {
                    throw ZipError(message: "\(member): a row longer than \(maxRowBytes) bytes")
                }
                var start = carry.startIndex
                while let newline = carry[start...].firstIndex(of: 0x0A) {
                    if newline > start, try !body(carry[start..<newline]) { return }
                    start = newline + 1
                }
                carry.removeSubrange(carry.startIndex..<start)
            }
            if !carry.isEmpty, try !body(carry[...]) { return }
        }
    }
}
