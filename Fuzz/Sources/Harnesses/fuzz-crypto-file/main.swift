import Foundation
import FuzzDriver
import FuzzQuery
import VQL

// read_crypto_file over arbitrary bytes, with the key its seeds are sealed to: the frame layer,
// key headers (JSON, base64, EC points), AES-GCM batches and the JSON lines inside. A test key,
// made for this harness only.
let privateKey = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNSO0PsOJiDe08t8r
NpKucmwvPu24Zp573+PNWP18M2+hRANCAARsWAxQdotln+/g4pE2W81+P/h5P1N3
BpHOuVFOOlehXxcilnA8YvDQiXftiQkHmyCqZYg5hZbfHrrfXBZnyUH8
-----END PRIVATE KEY-----
"""
let certificate = """
-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUYtCIrGAxxTbNIzUZuw1PL3+bLC4wCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcXVhcnJ5LWZ1enowIBcNMjYxMjAyMTM0MjI4WhgPMjEyNjEx
MDgxMzQyMjhaMBYxFDASBgNVBAMMC3F1YXJyeS1mdXp6MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEbFgMUHaLZZ/v4OKRNlvNfj/4eT9TdwaRzrlRTjpXoV8XIpZw
PGLw0Il37YkJB5sgqmWIOYWW3x6631wWZ8lB/KNTMFEwHQYDVR0OBBYEFCU0/wRU
QwRF8l+QolHRkz6ME5vvMB8GA1UdIwQYMBaAFCU0/wRUQwRF8l+QolHRkz6ME5vv
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAKQ/GJFOg/M1Tmcu
4ieMTp5KIFG6wsU7qSNK8X8CKqwaAiEAs6y3Uep5EBcw7yCALHIDJJdunbLQ0c7J
CS+CWgjK00M=
-----END CERTIFICATE-----
"""
let harness = QueryHarness("SELECT * FROM read_crypto_file(filename=Data, accessor='data', private_key=Key)",
                           variables: ["Key": .string(privateKey)])

runFuzzer(samples: {
    // Files written by write_crypto_file itself: one segment of three batches, and two segments.
    let scratch = ScratchFolder("crypto-file")
    defer { scratch.clear() }
    let writer = QueryHarness("""
        SELECT * FROM write_crypto_file(filename=Path, public_key=Cert, max_rows=2,
            query={ SELECT _value AS N, format(format='row %d', args=_value) AS Text, dict(A=[1, 2]) AS D FROM range(end=5) })
        """, variables: ["Cert": .string(certificate)])
    var samples: [[UInt8]] = []
    for segments in 1...2 {
        let path = scratch.path + "/sample\(segments).crypt"
        for _ in 0..<segments { writer.run([], variables: ["Path": .string(path)]) }
        if let data = FileManager.default.contents(atPath: path) { samples.append([UInt8](data)) }
    }
    return samples
}) { bytes in
    harness.run(bytes)
}
