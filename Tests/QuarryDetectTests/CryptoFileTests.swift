import Foundation
import Testing
import VQL

/// write_crypto_file() and read_crypto_file() with keys made by openssl: an EC P-256 certificate
/// (the kind the fleet's CA has) and an RSA public key; appending, the agent's config as the
/// default recipient, the size limit, and damaged, truncated and foreign files.
@Suite struct CryptoFileTests {
    struct Keys {
        let certificate: String, privateKey: String
    }

    static func openssl(_ arguments: [String], in dir: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openssl \(arguments)")
    }

    static func ecKeys(_ dir: String, _ name: String) throws -> Keys {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                     "-out", name + ".pem", "-subj", "/CN=" + name, "-days", "1"], in: dir)
        return Keys(certificate: try String(contentsOfFile: dir + "/" + name + ".pem", encoding: .utf8),
                    privateKey: try String(contentsOfFile: dir + "/" + name + ".key", encoding: .utf8))
    }

    static func rsaKeys(_ dir: String) throws -> Keys {
        try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"], in: dir)
        try openssl(["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"], in: dir)
        return Keys(certificate: try String(contentsOfFile: dir + "/rsa.pub", encoding: .utf8),
                    privateKey: try String(contentsOfFile: dir + "/rsa.key", encoding: .utf8))
    }

    func write(_ file: String, _ recipient: String?, rows: Int, marker: String, extra: String = "", config: String? = nil) throws -> [String] {
        let key = recipient == nil ? "" : ", public_key=Recipient"
        let (written, log) = try detect("""
            SELECT * FROM write_crypto_file(filename='\(file)'\(key), max_rows=2\(extra),
                query={ SELECT _value AS N, '\(marker)' AS Marker, dict(Deep=_value * 10) AS Nested FROM range(end=\(rows)) })
            """) { scope in
            if let recipient { scope.root.set("Recipient", .string(recipient)) }
            if let config { scope.root.set("config", .dict(Dict([("ca_certificate", .string(config))]))) }
        }
        // The rows pass through when the file can be written, and none when it cannot.
        #expect(written.count == (log.contains { $0.hasPrefix("ERROR") } ? 0 : rows), "\(log)")
        return log
    }

    func read(_ file: String, _ key: String) throws -> ([Value], [String]) {
        try detect("SELECT * FROM read_crypto_file(filename='\(file)', private_key=Key)") { $0.root.set("Key", .string(key)) }
    }

    @Test func rowsComeBackOnlyWithTheRightKey() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ec = try Self.ecKeys(dir, "fleet"), other = try Self.ecKeys(dir, "other"), rsa = try Self.rsaKeys(dir)
        let file = dir + "/store.crypt"
        #expect(try write(file, ec.certificate, rows: 5, marker: "quarry-secret-marker").isEmpty)
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(bytes.range(of: Data("quarry-secret-marker".utf8)) == nil, "no row text in clear")
        let (rows, log) = try read(file, ec.privateKey)
        #expect(log.isEmpty, "\(log)")
        #expect(rows.compactMap { $0.member("N").intValue } == [0, 1, 2, 3, 4])
        #expect(rows.last?.member("Nested").member("Deep").intValue == 40)
        // Another key opens nothing and says why; an RSA key for an EC segment too.
        let (none, wrong) = try read(file, other.privateKey)
        #expect(none.isEmpty)
        #expect(wrong.contains { $0.contains("cannot be opened with this key") }, "\(wrong)")
        let (_, mismatched) = try read(file, rsa.privateKey)
        #expect(mismatched.contains { $0.contains("cannot be opened") }, "\(mismatched)")
        // A second writer appends its own segment (here to an RSA key): each key opens its own.
        #expect(try write(file, rsa.certificate, rows: 3, marker: "second").isEmpty)
        #expect(try read(file, ec.privateKey).0.count == 5)
        #expect(try read(file, rsa.privateKey).0.compactMap { $0.member("Marker").stringValue } == ["second", "second", "second"])
    }

    @Test func anAgentWritesToItsFleetCAByDefault() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try Self.ecKeys(dir, "ca")
        #expect(try write(dir + "/a.crypt", nil, rows: 2, marker: "m", config: ca.certificate).isEmpty)
        #expect(try read(dir + "/a.crypt", ca.privateKey).0.count == 2)
        let log = try write(dir + "/b.crypt", nil, rows: 1, marker: "m")
        #expect(log.contains { $0.contains("no recipient") }, "\(log)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.crypt"))
    }

    @Test func damageIsReportedAndTheRestStillReads() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try Self.ecKeys(dir, "k")
        let file = dir + "/s.crypt"
        _ = try write(file, keys.certificate, rows: 6, marker: "m") // three batches of two
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        // Flip a byte in the last batch: the first two still read, the third is named.
        var flipped = original
        flipped[flipped.count - 20] ^= 0xFF
        try Data(flipped).write(to: URL(fileURLWithPath: file))
        let (some, log) = try read(file, keys.privateKey)
        #expect(some.count == 4)
        #expect(log.contains { $0.contains("batch 2") && $0.contains("does not authenticate") }, "\(log)")
        // A file cut mid-batch: what is whole reads, the cut is reported.
        try Data(original.dropLast(10)).write(to: URL(fileURLWithPath: file))
        let (cut, cutLog) = try read(file, keys.privateKey)
        #expect(cut.count == 4)
        #expect(cutLog.contains { $0.contains("partial") }, "\(cutLog)")
        // Not ours at all: refused for reading and for appending.
        try Data("plain text".utf8).write(to: URL(fileURLWithPath: file))
        #expect(try read(file, keys.privateKey).1.contains { $0.contains("not an encrypted storage file") })
        let appendLog = try write(file, keys.certificate, rows: 1, marker: "m")
        #expect(appendLog.contains { $0.contains("not an encrypted storage file") }, "\(appendLog)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "plain text")
        // Random damage never crashes the reader.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<FuzzBudget.iterations {
            var mutated = original
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let cutAt = Int.random(in: 0...mutated.count, using: &generator)
            _ = try detect("SELECT * FROM read_crypto_file(filename=F, accessor='data', private_key=Key)") {
                $0.root.set("F", .string(bytes: Array(mutated.prefix(cutAt))))
                $0.root.set("Key", .string(keys.privateKey))
            }
        }
    }

    @Test func aFilePastMaxSizeStartsAgainAndSaysSo() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try Self.ecKeys(dir, "k")
        let file = dir + "/s.crypt"
        let log = try write(file, keys.certificate, rows: 400, marker: String(repeating: "x", count: 100), extra: ", max_size=5000")
        #expect(log.contains { $0.contains("grew past max_size") }, "\(log)")
        let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        #expect(size <= 5000 && size > 0)
        let (rows, readLog) = try read(file, keys.privateKey)
        #expect(readLog.isEmpty, "\(readLog)")
        #expect(!rows.isEmpty && rows.count < 400)
        #expect(rows.last?.member("N").intValue == 399, "the newest rows are kept")
    }
}
