import Fleet
import FleetCore
import Foundation
import FuzzDriver

// What the server decodes from an agent (before and after enrolment): a frame through the server's
// own decoder (invalid UTF-8 repaired), then the result rows as the server reads host facts from
// them. A decoded message must survive encoding and decoding unchanged.
runFuzzer(samples: {
    let messages: [AgentMessage] = [
        .enroll(secret: "s3cret", csr: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", hostname: "host", labels: ["a"]),
        .hello(version: Wire.version, queuedBatches: 2, droppedBatches: 0),
        .batch(WireBatch(flowId: "F.1", seq: 1, payload: .rows(artifact: "Generic.Client.Info", source: "BasicInformation",
                                                               rows: [#"{"Hostname":"h","OS":"linux","IPs":["10.0.0.1"]}"#]))),
        .batch(WireBatch(flowId: "F.1", seq: 2, payload: .uploadPart(index: 0, name: "/etc/hosts", offset: 0, data: Data("127.0.0.1 localhost\n".utf8),
                                                                     last: true, size: 20, sha256: String(repeating: "a", count: 64), md5: String(repeating: "b", count: 32)))),
        .batch(WireBatch(flowId: "F.1", seq: 3, payload: .log([#"{"level":"info","message":"hi"}"#]))),
        .batch(WireBatch(flowId: "F.1", seq: 4, payload: .status(FlowStatus(state: .finished, errors: ["e"], rows: 1, time: 1.5)))),
    ]
    return messages.compactMap { try? Wire.encode($0) }.map { Array($0) }
}) { bytes in
    guard let (message, _) = FleetServer.decodeAgentMessage(Data(bytes)) else { return }
    if case .batch(let batch) = message, case .rows(_, _, let rows) = batch.payload {
        for row in rows { _ = try? JSONSerialization.jsonObject(with: Data(row.utf8)) }
    }
    if let encoded = try? Wire.encode(message) {
        let again = try? Wire.decode(AgentMessage.self, from: encoded)
        fuzzCheck(again == message, "an agent message changed through encode and decode: \(message)")
    }
}
