import Artifacts
import Foundation
import Testing

@testable import QuarryCollector

/// Sealed containers and collector specs at the unit level: the zip64 form of the outer container
/// (forced with a low threshold, as a memory image would force it) still opens in Quarry and in
/// 7-Zip; a spec survives the trip through a file and a changed byte is caught.
struct SealedContainerTests {
    static func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "quarry-sealed-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A clear container with one member of `size` pseudo-random bytes.
    static func clearContainer(_ path: String, size: Int) throws -> Data {
        var generator = SystemRandomNumberGenerator()
        let bytes = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let writer = try ZipWriter(path: path)
        try writer.add(name: "uploads/image.raw", data: bytes)
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test func zip64SealedContainerRoundTripsAndOpensInSevenZip() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clear = try Self.clearContainer(dir + "/clear.zip", size: 300_000)
        let password = Array("a long enough password".utf8)
        let metadata = SealedContainer.Metadata(Scheme: "Password", EncryptedPass: nil, CertificateSHA256: nil, Hostname: "h", Created: "now", Tool: "test")
        // Every size and offset past 1,000 bytes is written as zip64.
        try SealedContainer.seal(plainZip: dir + "/clear.zip", output: dir + "/sealed.zip", metadata: metadata, password: password, mode: 0o600, zip64Threshold: 1000)
        let sealed = try Data(contentsOf: URL(fileURLWithPath: dir + "/sealed.zip"))
        #expect(sealed.range(of: Data([0x50, 0x4B, 0x06, 0x06])) != nil, "the zip64 end record is there")
        #expect(try SealedContainer.metadata(path: dir + "/sealed.zip")?.Hostname == "h")
        try SealedContainer.unseal(path: dir + "/sealed.zip", password: password, output: dir + "/back.zip")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/back.zip")) == clear)
        #expect(throws: (any Error).self) { try SealedContainer.unseal(path: dir + "/sealed.zip", password: Array("wrong".utf8), output: dir + "/no.zip") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/no.zip"))

        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/7zz") else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/7zz")
        process.arguments = ["x", "-y", "-pa long enough password", "-o\(dir)/7z", dir + "/sealed.zip"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/7z/data.zip")) == clear)
    }

    @Test func specTravelsAtTheEndOfAFileAndDamageIsCaught() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var spec = CollectorSpec(artifacts: ["Linux.Sys.Users", "Custom.X"])
        spec.parameters = ["Glob": "/etc/**"]
        spec.timeout = 60
        spec.encryption = .x509(certificatePEM: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        spec.upload = CollectorSpec.Upload(serverURL: "https://fleet:8000", caCertificate: "CA", token: "QU.x")
        let path = dir + "/collector"
        try (Data("#!/bin/sh\nexit 0\n".utf8) + EmbeddedSpec.trailer(for: spec)).write(to: URL(fileURLWithPath: path))
        #expect(try EmbeddedSpec.read(path: path) == spec)
        // A file without the marker carries no spec; one with a changed spec byte is refused.
        try Data("plain executable bytes".utf8).write(to: URL(fileURLWithPath: dir + "/plain"))
        #expect(try EmbeddedSpec.read(path: dir + "/plain") == nil)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 70] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: EmbeddedSpec.SpecError.self) { try EmbeddedSpec.read(path: path) }
    }

    @Test func containerNamesAreSafeAndSortable() {
        let date = Date(timeIntervalSince1970: 1_796_083_200)  // 2026-12-01T00:00:00Z
        #expect(CollectorSpec.containerName(hostname: "web-1.example.org", date: date) == "Collection-web-1.example.org-20261201T000000Z.zip")
        #expect(CollectorSpec.containerName(hostname: "../etc/passwd x", date: date) == "Collection-.._etc_passwd_x-20261201T000000Z.zip")
        #expect(CollectorSpec.containerName(hostname: "", date: date) == "Collection-host-20261201T000000Z.zip")
    }
}
