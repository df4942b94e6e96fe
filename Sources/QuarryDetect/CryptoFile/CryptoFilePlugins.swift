import Crypto
import Foundation
import PrivateFiles
import VQL

/// write_crypto_file() and read_crypto_file(): Velociraptor's encrypted local storage, in
/// Quarry's format (CryptoFileFormat). The writer needs only a public key — by default the fleet
/// CA certificate an agent's `config` carries, so the server side holds the key that opens it.
public enum CryptoFilePlugins {
    public static var plugins: [PluginDeclaration] { [write, read] }

    public static let write = PluginDeclaration(
        name: "write_crypto_file",
        summary: "Appends the rows of query= to an encrypted file (0600) that only the holder of the private key can read back "
            + "with read_crypto_file(). Rows are sealed in batches (max_rows, or max_wait seconds since the last batch, and at "
            + "the end); a file past max_size is emptied and started again, with a warning. Yields the rows unchanged.",
        arguments: [
            ArgumentSpec("filename", .string, required: true, "The file to write (appended to when it exists)."),
            ArgumentSpec("query", .query, required: true, "The rows to store."),
            ArgumentSpec("max_wait", .int, "Seal the pending rows when this many seconds passed since the last batch (default 60)."),
            ArgumentSpec("max_rows", .int, "Seal after this many rows (default 1000)."),
            ArgumentSpec("max_size", .int, "Start the file again when it grows past this many bytes (default 1 GiB)."),
            ArgumentSpec("public_key", .string, "The recipient: a PEM certificate or public key, RSA or EC P-256 (default: the "
                         + "ca_certificate of the agent's config)."),
        ],
        examples: [CertificateFunctions.exampleKeys + """

            SELECT Hostname FROM write_crypto_file(filename=tempdir() + '/q.crypt', public_key=PublicKey, query={ SELECT * FROM info() })
            """],
        permissions: [.filesystemWrite]
    ) { ctx in
        guard ctx.context.require(.filesystemWrite, for: "write_crypto_file"), let path = ctx.string("filename"), !path.isEmpty else {
            ctx.log(.error, "write_crypto_file: filename= is required")
            return ArrayCursor([])
        }
        var recipient = ctx.string("public_key")
        if recipient == nil, case .dict(let config)? = ctx.env.lookup("config"), case .string(let ca)? = config["ca_certificate"], !ca.isEmpty {
            recipient = ca
        }
        guard let recipient else {
            ctx.log(.error, "write_crypto_file: no recipient: give public_key= (a PEM certificate or key), or run on an agent whose config has a ca_certificate")
            return ArrayCursor([])
        }
        let writer: CryptoFileWriter
        do {
            writer = try CryptoFileWriter(path: path, recipientPEM: recipient, maxSize: Int64(clamping: ctx.int("max_size") ?? 1 << 30))
        } catch {
            ctx.log(.error, "write_crypto_file: \(path): \(error)")
            return ArrayCursor([])
        }
        let upstream = try ctx.rows("query") ?? ArrayCursor([])
        let maxRows = max(1, Int(clamping: ctx.int("max_rows") ?? 1000))
        let maxWait = Double(max(0, ctx.int("max_wait") ?? 60))
        var pending: [UInt8] = [], count = 0, last = Date()
        func seal() {
            guard count > 0 else { return }
            do {
                if let warning = try writer.append(rows: pending) { ctx.log(.warning, "write_crypto_file: \(path): \(warning)") }
            } catch {
                ctx.log(.error, "write_crypto_file: \(path): \(error)")
            }
            pending = []
            count = 0
            last = Date()
        }
        return GeneratorCursor(onClose: { seal(); upstream.close(); writer.close() }) {
            guard let row = try upstream.next() else {
                seal()
                writer.close()
                return nil
            }
            JSONWriter.write(row.materialized(), into: &pending)
            pending.append(0x0A)
            count += 1
            if count >= maxRows || Date().timeIntervalSince(last) >= maxWait { seal() }
            return row
        }
    }

    public static let read = PluginDeclaration(
        name: "read_crypto_file",
        summary: "The rows stored by write_crypto_file(), decrypted with private_key= (PEM, RSA or EC P-256). Damaged or "
            + "foreign segments are reported and skipped; a partial last batch (a writer stopped mid-write) is reported.",
        arguments: [
            ArgumentSpec("filename", .any, required: true, "The encrypted file."),
            ArgumentSpec("accessor", .string, "How to reach it: file (default), data, zip, …"),
            ArgumentSpec("private_key", .string, "The recipient's private key, PEM. Not needed for an upload on the fleet server "
                         + "(accessor='fs' in server VQL): the server decrypts it with its own key."),
        ],
        examples: [CertificateFunctions.exampleKeys + """

            LET Store <= tempdir() + '/q.crypt'
            LET Written <= SELECT * FROM write_crypto_file(filename=Store, public_key=PublicKey, query={ SELECT 'evidence' AS Marker FROM scope() })
            SELECT * FROM read_crypto_file(filename=Store, private_key=PrivateKey)
            """],
        permissions: [.filesystemRead]
    ) { ctx in
        guard ctx.context.require(.filesystemRead, for: "read_crypto_file") else { return ArrayCursor([]) }
        // An upload on the fleet server (accessor fs) is decrypted there, where the key is.
        if ctx.string("private_key") == nil, ctx.string("accessor") == "fs", let path = ctx.string("filename"),
           let decryptor = ctx.context.service(RemoteServices.storageDecryptor) {
            do { return ArrayCursor(try decryptor.rows(path)) } catch {
                ctx.log(.error, "read_crypto_file: \(path): \(error)")
                return ArrayCursor([])
            }
        }
        guard let source = ParserInput.open(ctx, "filename") else { return ArrayCursor([]) }
        guard let pem = ctx.string("private_key") else {
            ctx.log(.error, "read_crypto_file: private_key= (the PEM private key the file was encrypted to) is required")
            return ArrayCursor([])
        }
        let key: CryptoFileFormat.PrivateKey
        do { key = try CryptoFileFormat.PrivateKey(pem: pem) } catch {
            ctx.log(.error, "read_crypto_file: \(error)")
            return ArrayCursor([])
        }
        return CryptoFileReader(source: source, key: key, ctx: ctx)
    }
}

/// Appends segments and sealed batches to one file.
final class CryptoFileWriter {
    private var fd: Int32
    private let recipientPEM: String
    private let maxSize: Int64
    private var key: SymmetricKey
    private var header: [UInt8]
    private var sequence: UInt64 = 0

    init(path: String, recipientPEM: String, maxSize: Int64) throws {
        self.recipientPEM = recipientPEM
        self.maxSize = max(4096, maxSize)
        (key, header) = try Self.segment(recipientPEM)
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            guard errno == ENOENT else { throw CryptoFileFormat.FormatError(description: String(cString: strerror(errno))) }
            fd = try PrivateFile.create(path)
            try PrivateFile.writeAll(fd, CryptoFileFormat.magic, path: path)
        } else {
            // Appending to a file that is not ours would bury rows where no reader looks.
            var info = stat()
            let reader = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            defer { if reader >= 0 { Glibc.close(reader) } }
            var start = [UInt8](repeating: 0, count: CryptoFileFormat.magic.count)
            let n = reader >= 0 ? pread(reader, &start, start.count, 0) : -1
            guard fstat(fd, &info) == 0, info.st_size == 0 || (n == start.count && start == CryptoFileFormat.magic) else {
                Glibc.close(fd)
                throw CryptoFileFormat.FormatError(description: "exists and is not an encrypted storage file")
            }
            if info.st_size == 0 { try PrivateFile.writeAll(fd, CryptoFileFormat.magic, path: path) }
        }
        try PrivateFile.writeAll(fd, header, path: path)
    }

    private static func segment(_ pem: String) throws -> (SymmetricKey, [UInt8]) {
        let (key, header) = try CryptoFileFormat.newSegment(recipientPEM: pem)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (key, CryptoFileFormat.frame(CryptoFileFormat.keyFrame, Array(try encoder.encode(header))))
    }

    /// Seals `rows` (JSON lines) as one frame; a warning when the file had to be started again.
    func append(rows: [UInt8]) throws -> String? {
        guard fd >= 0 else { throw CryptoFileFormat.FormatError(description: "the file is closed") }
        var warning: String?
        var info = stat()
        // A frame is the rows plus 5 bytes of framing and 28 of nonce and tag.
        if fstat(fd, &info) == 0, Int64(info.st_size) + Int64(rows.count) + 33 > maxSize {
            // Past the limit: the oldest rows go, said aloud; a fresh segment starts the file.
            warning = "grew past max_size (\(maxSize) bytes): \(info.st_size) bytes of older rows were dropped"
            guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
                throw CryptoFileFormat.FormatError(description: String(cString: strerror(errno)))
            }
            (key, header) = try Self.segment(recipientPEM)
            sequence = 0
            try PrivateFile.writeAll(fd, CryptoFileFormat.magic + header, path: "crypto file")
        }
        let sealed = try AES.GCM.seal(rows, using: key, authenticating: CryptoFileFormat.sequenceData(sequence))
        guard let combined = sealed.combined else { throw CryptoFileFormat.FormatError(description: "cannot seal") }
        try PrivateFile.writeAll(fd, CryptoFileFormat.frame(CryptoFileFormat.rowsFrame, Array(combined)), path: "crypto file")
        sequence += 1
        return warning
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// Reads segment after segment, yielding the rows of each batch that opens with the key.
final class CryptoFileReader: RowCursor {
    private let source: any ParserSource
    private let key: CryptoFileFormat.PrivateKey
    private let ctx: CallContext
    private var offset: Int64
    private var content: SymmetricKey?
    private var sequence: UInt64 = 0
    private var ready: [Value] = []
    private var done = false

    init(source: any ParserSource, key: CryptoFileFormat.PrivateKey, ctx: CallContext) {
        self.source = source
        self.key = key
        self.ctx = ctx
        offset = Int64(CryptoFileFormat.magic.count)
        if source.read(at: 0, count: CryptoFileFormat.magic.count) != CryptoFileFormat.magic {
            ctx.log(.error, "read_crypto_file: not an encrypted storage file (no QCRYPT1 header)")
            done = true
        }
    }

    func next() throws -> Value? {
        while ready.isEmpty, !done {
            try ctx.checkCancelled()
            readFrame()
        }
        return ready.isEmpty ? nil : ready.removeFirst()
    }

    private func readFrame() {
        let head = source.read(at: offset, count: 5)
        guard head.count == 5 else {
            if !head.isEmpty { ctx.log(.warning, "read_crypto_file: the file ends inside a frame header (a writer stopped mid-write)") }
            done = true
            return
        }
        let length = Int(head[1]) << 24 | Int(head[2]) << 16 | Int(head[3]) << 8 | Int(head[4])
        guard length <= CryptoFileFormat.maxFrame else {
            ctx.log(.error, "read_crypto_file: a frame of \(length) bytes at offset \(offset) is larger than any writer makes: the file is damaged")
            done = true
            return
        }
        let payload = source.read(at: offset + 5, count: length)
        guard payload.count == length else {
            ctx.log(.warning, "read_crypto_file: the last batch is partial (\(payload.count) of \(length) bytes; a writer stopped mid-write)")
            done = true
            return
        }
        offset += 5 + Int64(length)
        switch head[0] {
        case CryptoFileFormat.keyFrame:
            sequence = 0
            content = nil
            do {
                guard length <= CryptoFileFormat.maxHeader else { throw CryptoFileFormat.FormatError(description: "the header is too large") }
                let header = try JSONDecoder().decode(CryptoFileFormat.Header.self, from: Data(payload))
                content = try CryptoFileFormat.contentKey(header, with: key)
            } catch {
                ctx.log(.error, "read_crypto_file: a segment cannot be opened with this key (\(error)); its rows are skipped")
            }
        case CryptoFileFormat.rowsFrame:
            defer { sequence += 1 }
            guard let content else { return }
            do {
                let box = try AES.GCM.SealedBox(combined: payload)
                let rows = try AES.GCM.open(box, using: content, authenticating: CryptoFileFormat.sequenceData(sequence))
                for line in rows.split(separator: 0x0A) where !line.isEmpty {
                    ready.append(try JSONParser.parse(bytes: Array(line)))
                }
            } catch {
                ctx.log(.error, "read_crypto_file: batch \(sequence) of a segment does not authenticate (damaged or tampered); skipped")
            }
        default:
            ctx.log(.error, "read_crypto_file: an unknown frame type \(head[0]) at offset \(offset - 5 - Int64(length)): the file is damaged")
            done = true
        }
    }
}
