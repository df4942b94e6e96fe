import Artifacts
import Fleet
import FleetCore
import Foundation
import FuzzDriver

// What an agent decodes from the server: a frame through the wire decoder, then (for a collection)
// the artifact definitions it carries, loaded as the agent loads them. A decoded message must
// survive encoding and decoding unchanged.
runFuzzer(samples: {
    let definition = "name: Custom.A\nsources:\n  - query: SELECT * FROM info()\n"
    let messages: [ServerMessage] = [
        .enrolled(clientId: "C.0123456789abcdef", certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        .refused(reason: "wrong secret"),
        .collect(flowId: "F.1", request: CollectionRequest(artifacts: ["Custom.A"], parameters: ["X": "1"], timeout: 60, maxRows: 10,
                                                           maxUploadBytes: 1 << 20, cpuLimit: 50), definitions: [definition]),
        .cancel(flowId: "F.1"),
        .ack(flowId: "F.1", seq: 3, rejected: nil),
        .ack(flowId: "F.1", seq: 4, rejected: "row 1 holds a NUL byte"),
    ]
    return messages.compactMap { try? Wire.encode($0) }.map { Array($0) }
}) { bytes in
    guard let message = try? Wire.decode(ServerMessage.self, from: Data(bytes)) else { return }
    if case .collect(_, _, let definitions) = message {
        let repository = ArtifactRepository()
        for (index, text) in definitions.enumerated() { _ = repository.add(text: text, file: "server:F/\(index)") }
    }
    if let encoded = try? Wire.encode(message) {
        let again = try? Wire.decode(ServerMessage.self, from: encoded)
        fuzzCheck(again == message, "a server message changed through encode and decode: \(message)")
    }
}
