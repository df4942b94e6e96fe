import Crypto
import Foundation
import Testing
import VQL
@testable import QuarryDetect

/// Runs a program to completion; returns its exit status.
@discardableResult
func run(_ program: String, _ arguments: [String], in directory: String? = nil) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// A program's standard output.
func output(_ program: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Certificates, signed data and keys made by openssl for the tests.
struct OpenSSLFixture {
    let directory: String
    static let openssl = "/usr/bin/openssl"

    init() throws {
        directory = try temporaryDirectory()
        try run(Self.openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
                               "-days", "30", "-subj", "/C=NZ/O=Quarry Test/CN=quarry.test",
                               "-addext", "subjectAltName=DNS:a.quarry.test,IP:127.0.0.1,email:ir@quarry.test",
                               "-addext", "keyUsage=digitalSignature,keyEncipherment",
                               "-addext", "extendedKeyUsage=serverAuth,codeSigning"], in: directory)
        try run(Self.openssl, ["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"], in: directory)
        try "signed content\n".write(toFile: directory + "/content.txt", atomically: true, encoding: .utf8)
        try run(Self.openssl, ["cms", "-sign", "-in", "content.txt", "-signer", "cert.pem", "-inkey", "key.pem",
                               "-outform", "DER", "-out", "signed.p7", "-binary"], in: directory)
    }

    func path(_ name: String) -> String { directory + "/" + name }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: OpenSSLFixture.openssl), "needs openssl"))
struct CertificateTests {
    @Test func x509FromPEMAndDERAsOpenSSLSeesIt() throws {
        let fixture = try OpenSSLFixture()
        let fingerprint = try output(OpenSSLFixture.openssl, ["x509", "-in", fixture.path("cert.pem"), "-noout", "-fingerprint", "-sha256"])
            .split(separator: "=").last.map { $0.replacingOccurrences(of: ":", with: "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased() }
        let serial = try output(OpenSSLFixture.openssl, ["x509", "-in", fixture.path("cert.pem"), "-noout", "-serial"])
            .split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        for query in [
            "SELECT parse_x509(data=read_file(filename='\(fixture.path("cert.pem"))')) AS C FROM scope()",
            "SELECT parse_x509(data=read_file(filename='\(fixture.path("cert.der"))')) AS C FROM scope()",
        ] {
            let (rows, log) = try detect(query)
            #expect(log.isEmpty, "\(log)")
            let certs = try #require(rows.first?.member("C").listElements)
            #expect(certs.count == 1)
            let c = certs[0]
            #expect(c.member("Subject").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
            #expect(c.member("Issuer").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
            #expect(c.member("SHA256").stringValue == fingerprint)
            let hexSerial = (c.member("SerialNumber").stringValue).flatMap { decimalToHex($0) }
            #expect(hexSerial == serial.lowercased().drop { $0 == "0" }.description)
            #expect(c.member("DNSNames").listElements?.compactMap(\.stringValue) == ["a.quarry.test"])
            #expect(c.member("IPAddresses").listElements?.compactMap(\.stringValue) == ["127.0.0.1"])
            #expect(c.member("EmailAddresses").listElements?.compactMap(\.stringValue) == ["ir@quarry.test"])
            #expect(c.member("KeyUsage").listElements?.compactMap(\.stringValue) == ["DigitalSignature", "KeyEncipherment"])
            #expect(c.member("ExtKeyUsage").listElements?.compactMap(\.stringValue) == ["ServerAuth", "CodeSigning"])
            #expect(c.member("PublicKeyAlgorithm").stringValue == "RSA")
            #expect(c.member("PublicKey").member("Size").intValue == 2048)
            #expect(c.member("SignatureAlgorithm").stringValue == "SHA256-RSA")
            let lifetime = (c.member("NotAfter").doubleValue ?? 0) - (c.member("NotBefore").doubleValue ?? 0)
            #expect(abs(lifetime - 30 * 86400) < 2)
        }
    }

    @Test func pkcs7SignersAndCertificates() throws {
        let fixture = try OpenSSLFixture()
        let (rows, log) = try detect("SELECT parse_pkcs7(data=read_file(filename='\(fixture.path("signed.p7"))')) AS P FROM scope()")
        #expect(log.isEmpty, "\(log)")
        let p = try #require(rows.first?.member("P"))
        #expect(p.member("ContentType").stringValue == "SignedData")
        #expect(p.member("EncapsulatedContentType").stringValue == "Data")
        #expect(p.member("DigestAlgorithms").listElements?.first?.stringValue == "SHA256")
        #expect(p.member("Certificates").listElements?.first?.member("Subject").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
        let signer = try #require(p.member("Signers").listElements?.first)
        #expect(signer.member("IssuerName").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
        #expect(signer.member("Subject").stringValue == "CN=quarry.test,O=Quarry Test,C=NZ")
        #expect(signer.member("DigestAlgorithm").stringValue == "SHA256")
        #expect(signer.member("SigningTime").doubleValue != nil)
        let digest = hex(Array(SHA256.hash(data: Array("signed content\n".utf8))))
        #expect(signer.member("MessageDigest").stringValue == digest)
    }

    @Test func encryptForACertificateAndDecryptWithItsKey() throws {
        let fixture = try OpenSSLFixture()
        let (rows, log) = try detect("""
            LET Cert <= read_file(filename='\(fixture.path("cert.pem"))')
            LET Key <= read_file(filename='\(fixture.path("key.pem"))')
            LET Sealed <= pk_encrypt(data='the evidence', public_key=Cert)
            SELECT pk_decrypt(data=Sealed, private_key=Key) AS Plain, Sealed =~ 'the evidence' AS Leaks,
                   pk_decrypt(data=xor(string=Sealed, key='\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01'), private_key=Key) AS Tampered
            FROM scope()
            """)
        #expect(rows.first?.member("Plain").stringValue == "the evidence")
        #expect(rows.first?.member("Leaks").isTruthy == false)
        #expect(rows.first?.member("Tampered").isNull == true)
        #expect(log.contains { $0.hasPrefix("ERROR: pk_decrypt") }, "\(log)")
    }

    /// Keys that are not RSA, or RSA keys that are damaged, are refused with an error. (Handed to
    /// swift-crypto's DER constructor they were freed twice and aborted the process, about one
    /// time in four — so each is tried many times.)
    @Test func nonRSAAndDamagedPublicKeysAreRefusedNotFatal() throws {
        let fixture = try OpenSSLFixture()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ec = try CryptoFileTests.ecKeys(dir, "ec")
        let rsaCert = try String(contentsOfFile: fixture.path("cert.pem"), encoding: .utf8)
        let logger = MemoryLogger()
        let registry = CoreLibrary.registry()
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        let session = Session(registry: registry, logger: logger)
        var random = SeededRandom(seed: 77)
        let der = try #require(X509Decoder.derBlocks(Array(rsaCert.utf8), label: "CERTIFICATE").first)
        for round in 0..<200 {
            let damaged = "-----BEGIN CERTIFICATE-----\n" + Data(random.mutate(der)).base64EncodedString() + "\n-----END CERTIFICATE-----\n"
            session.root.set("Key", .string(round % 2 == 0 ? ec.certificate : damaged))
            let results = try session.run("SELECT pk_encrypt(data='x', public_key=Key) AS Sealed FROM scope()")
            if round % 2 == 0 { #expect(((results.last ?? nil) ?? []).first?.member("Sealed").isNull == true) }
        }
        #expect(logger.messages.contains { $0.contains("not RSA") }, "\(logger.messages.prefix(3))")
    }

    /// Mutated DER certificates and signed data: no crash, every result materializes.
    @Test func fuzzCertificatesAndSignedData() throws {
        let fixture = try OpenSSLFixture()
        let session = detectSession()
        var random = SeededRandom(seed: 509)
        for (name, function) in [("cert.der", "parse_x509"), ("signed.p7", "parse_pkcs7")] {
            let sample = try fixture.bytes(name)
            for _ in 0..<FuzzBudget.iterations {
                let input = random.mutate(sample)
                let results = try session.run("SELECT \(function)(data=unhex(string='\(hex(input))')) AS X FROM scope()")
                _ = JSONWriter.string(Value.list((results.last ?? nil) ?? []).materialized())
            }
        }
    }
}

/// Hex of a decimal string (serial numbers).
func decimalToHex(_ decimal: String) -> String? {
    var digits = decimal.compactMap { $0.wholeNumberValue }
    guard !digits.isEmpty else { return nil }
    var out: [Character] = []
    while !(digits.count == 1 && digits[0] == 0) && !digits.isEmpty {
        var remainder = 0
        var next: [Int] = []
        for d in digits {
            let value = remainder * 10 + d
            let q = value / 16
            remainder = value % 16
            if !next.isEmpty || q > 0 { next.append(q) }
        }
        out.append(Character(String(remainder, radix: 16)))
        digits = next
    }
    return String(out.reversed())
}
