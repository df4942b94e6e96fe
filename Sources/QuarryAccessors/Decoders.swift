import CBzip2
import CZlib
import VQL

/// Why a compressed stream could not be decoded.
struct DecodeError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// zlib inflate over an input stream: raw DEFLATE (zip members) or gzip (with concatenated
/// members, as gzip(1) writes them).
final class InflateDecoder: StreamDecoder {
    enum Format { case raw, gzip }

    private var stream = z_stream()
    private let input: InputStream
    private let format: Format
    private var open = false
    private var finished = false

    init(_ file: any ReadableFile, format: Format) throws {
        self.input = InputStream(file)
        self.format = format
        let bits: Int32 = format == .raw ? -15 : 15 + 16
        guard inflateInit2_(&stream, bits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DecodeError(message: "zlib: cannot initialise")
        }
        open = true
    }

    func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard open, !finished, let out = buffer.baseAddress else { return 0 }
        stream.next_out = out.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(buffer.count)
        while stream.avail_out == uInt(buffer.count) {
            if input.pending == 0 {
                guard try input.fill() else {
                    if format == .gzip && stream.total_in == 0 { return 0 }
                    throw DecodeError(message: "compressed data ends early (truncated)")
                }
            }
            let before = input.pending
            let status: Int32 = input.buffer.withUnsafeMutableBytes { raw in
                stream.next_in = raw.baseAddress.map { ($0 + input.start).assumingMemoryBound(to: Bytef.self) }
                stream.avail_in = uInt(before)
                return inflate(&stream, Z_NO_FLUSH)
            }
            input.consume(before - Int(stream.avail_in))
            switch status {
            case Z_OK, Z_BUF_ERROR: continue
            case Z_STREAM_END:
                // gzip files may hold several members back to back; a raw stream ends here.
                if format == .gzip, (input.pending > 0 || (try? input.fill()) == true), input.buffer[input.start] == 0x1f {
                    inflateReset(&stream)
                    continue
                }
                finished = true
                return buffer.count - Int(stream.avail_out)
            default:
                throw DecodeError(message: "corrupt compressed data (zlib \(status))")
            }
        }
        return buffer.count - Int(stream.avail_out)
    }

    func close() {
        if open { inflateEnd(&stream) }
        open = false
    }

    deinit { close() }
}

/// libbz2 decompression over an input stream (concatenated streams too, as bzip2(1) allows).
final class Bzip2Decoder: StreamDecoder {
    private var stream = bz_stream()
    private let input: InputStream
    private var open = false
    private var finished = false

    init(_ file: any ReadableFile) throws {
        self.input = InputStream(file)
        guard BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK else { throw DecodeError(message: "bzip2: cannot initialise") }
        open = true
    }

    func decode(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard open, !finished, let out = buffer.baseAddress else { return 0 }
        stream.next_out = out.assumingMemoryBound(to: CChar.self)
        stream.avail_out = UInt32(buffer.count)
        while stream.avail_out == UInt32(buffer.count) {
            if input.pending == 0 {
                guard try input.fill() else { throw DecodeError(message: "bzip2 data ends early (truncated)") }
            }
            let before = input.pending
            let status: Int32 = input.buffer.withUnsafeMutableBytes { raw in
                stream.next_in = raw.baseAddress.map { ($0 + input.start).assumingMemoryBound(to: CChar.self) }
                stream.avail_in = UInt32(before)
                return BZ2_bzDecompress(&stream)
            }
            input.consume(before - Int(stream.avail_in))
            switch status {
            case BZ_OK: continue
            case BZ_STREAM_END:
                if (input.pending > 0 || (try? input.fill()) == true), input.buffer[input.start] == UInt8(ascii: "B") {
                    BZ2_bzDecompressEnd(&stream)
                    let produced = buffer.count - Int(stream.avail_out)
                    stream = bz_stream()
                    guard BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK else {
                        open = false
                        throw DecodeError(message: "bzip2: cannot initialise")
                    }
                    if produced > 0 { return produced }
                    stream.next_out = out.assumingMemoryBound(to: CChar.self)
                    stream.avail_out = UInt32(buffer.count)
                    continue
                }
                finished = true
                return buffer.count - Int(stream.avail_out)
            default:
                throw DecodeError(message: "corrupt bzip2 data (libbz2 \(status))")
            }
        }
        return buffer.count - Int(stream.avail_out)
    }

    func close() {
        if open { BZ2_bzDecompressEnd(&stream) }
        open = false
    }

    deinit { close() }
}

/// Whole-buffer helpers for functions that work on strings (gunzip, compress).
enum Compression {
    /// Decompresses gzip (or raw zlib when `raw`) data held in memory, at most `limit` bytes out.
    static func gunzip(_ data: [UInt8], limit: Int) throws -> [UInt8] {
        let file = StreamFile(limit: nil, retainLimit: 0) { try InflateDecoder(MemoryFile(data), format: .gzip) }
        return try file.readAll(limit: limit)
    }

    /// gzip-compresses what `read` yields, handing compressed chunks to `write`.
    static func gzip(read: (inout [UInt8]) throws -> Int, write: ([UInt8]) throws -> Void) throws {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DecodeError(message: "zlib: cannot initialise")
        }
        defer { deflateEnd(&stream) }
        var input = [UInt8](repeating: 0, count: 1 << 20)
        var output = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try read(&input)
            let flush = n <= 0 ? Z_FINISH : Z_NO_FLUSH
            var status: Int32 = Z_OK
            try input.withUnsafeMutableBytes { inRaw in
                stream.next_in = inRaw.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(max(0, n))
                repeat {
                    let produced: Int = output.withUnsafeMutableBytes { outRaw in
                        stream.next_out = outRaw.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.avail_out = uInt(outRaw.count)
                        status = deflate(&stream, flush)
                        return outRaw.count - Int(stream.avail_out)
                    }
                    if produced > 0 { try write(Array(output[0..<produced])) }
                } while stream.avail_out == 0
            }
            if flush == Z_FINISH {
                guard status == Z_STREAM_END else { throw DecodeError(message: "zlib: compression failed (\(status))") }
                return
            }
        }
    }
}
