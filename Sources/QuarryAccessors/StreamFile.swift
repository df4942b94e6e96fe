import VQL

/// A decoder that turns a compressed stream into bytes, front to back (inflate, bunzip2).
protocol StreamDecoder: AnyObject {
    /// Produces up to `buffer.count` bytes; 0 at the end of the stream.
    func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func close()
}

/// A compressed stream as a ReadableFile. Compressed data cannot be read from the middle, so
/// reading moves forward by decoding; the first `retainLimit` bytes decoded are kept, so the
/// small random reads of a parser (a zip in a zip, an ext4 image in a zip) are served from
/// memory; a backward read past that restarts the decoder. Output never goes past `limit` (a
/// zip member's declared size: a stream that claims less than it holds is cut there, one that
/// holds less ends early). Memory stays bounded whatever the stream holds.
final class StreamFile: ReadableFile {
    private let make: () throws -> any StreamDecoder
    private var decoder: (any StreamDecoder)?
    private var position: Int64 = 0
    private var retained: [UInt8] = []
    private var retaining = true
    private var ended = false
    private let limit: Int64?
    private let retainLimit: Int
    private(set) var knownSize: Int64?

    init(limit: Int64?, retainLimit: Int = 32 << 20, make: @escaping () throws -> any StreamDecoder) {
        self.limit = limit
        self.retainLimit = retainLimit
        self.make = make
    }

    /// The declared size when there is one, else the size once the stream has been read through.
    var size: Int64? { limit ?? knownSize }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= 0, buffer.count > 0, let base = buffer.baseAddress else { return 0 }
        var want = buffer.count
        if let limit {
            guard offset < limit else { return 0 }
            want = Int(min(Int64(want), limit - offset))
        }
        if retaining, offset < Int64(retained.count) {
            let start = Int(offset)
            let n = min(want, retained.count - start)
            retained.withUnsafeBytes { source in
                if let from = source.baseAddress { base.copyMemory(from: from + start, byteCount: n) }
            }
            return n
        }
        if offset < position { try restart() }
        var scratch = [UInt8](repeating: 0, count: 64 << 10)
        while position < offset {
            let skip = Int(min(Int64(scratch.count), offset - position))
            let n = try scratch.withUnsafeMutableBytes { try decode(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<skip])) }
            if n == 0 { return 0 }
        }
        return try decode(into: UnsafeMutableRawBufferPointer(start: base, count: want))
    }

    /// Decodes at the current position, keeping what is retained.
    private func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if ended { return 0 }
        if decoder == nil { decoder = try make() }
        guard let decoder else { return 0 }
        var want = buffer.count
        if let limit { want = Int(min(Int64(want), limit - position)) }
        guard want > 0 else { return 0 }
        let n = try decoder.decode(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        if n == 0 {
            ended = true
            knownSize = position
            return 0
        }
        if retaining {
            if retained.count + n <= retainLimit {
                retained.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            } else {
                retaining = false
                retained = []
            }
        }
        position += Int64(n)
        return n
    }

    private func restart() throws {
        decoder?.close()
        decoder = nil
        position = 0
        ended = false
    }

    func close() {
        decoder?.close()
        decoder = nil
        retained = []
    }

    deinit { decoder?.close() }
}

/// Compressed input read front to back from a ReadableFile, in chunks.
final class InputStream {
    let file: any ReadableFile
    private(set) var offset: Int64 = 0
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private(set) var available = 0
    private(set) var start = 0

    init(_ file: any ReadableFile) { self.file = file }

    /// Refills the buffer when it is empty; false at the end of the input.
    func fill() throws -> Bool {
        if start < available { return true }
        available = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        start = 0
        offset += Int64(available)
        return available > 0
    }

    /// Marks `count` bytes of the buffer as used.
    func consume(_ count: Int) { start += count }

    var pending: Int { available - start }
}
