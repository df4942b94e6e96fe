import Fleet
import Foundation
import Testing

/// Messages on the agent channel are hostile until proven otherwise: nesting past any limit, bad
/// UTF-8 and garbage decode to an error (or a repaired text), never a crash, in both directions.
@Suite struct WireDecodingTests {
    @Test func deeplyNestedMessagesAreErrors() {
        for n in [1_000, 100_000] {
            let brackets = Data((String(repeating: "[", count: n) + String(repeating: "]", count: n)).utf8)
            #expect(throws: (any Error).self) { try Wire.decode(AgentMessage.self, from: brackets) }
            #expect(throws: (any Error).self) { try Wire.decode(ServerMessage.self, from: brackets) }
            let inBatch = Data((#"{"batch":{"_0":{"flowId":"F.1","seq":1,"payload":{"rows":{"artifact":"A","source":"","rows":"# + String(repeating: "[", count: n)).utf8)
            #expect(throws: (any Error).self) { try Wire.decode(AgentMessage.self, from: inBatch) }
            // A row is a JSON text the server may parse (host facts): deep rows are errors there too.
            let row = Data((String(repeating: #"{"a":"#, count: n) + "1" + String(repeating: "}", count: n)).utf8)
            #expect((try? JSONSerialization.jsonObject(with: row)) == nil)
        }
    }

    @Test func invalidUTF8IsRepairedSoTheBatchCanBeRefused() throws {
        var data = Data(#"{"batch":{"_0":{"flowId":"F.1","seq":7,"payload":{"rows":{"artifact":"A","source":"","rows":["x"#.utf8)
        data.append(contentsOf: [0xFF, 0xFE])
        data.append(contentsOf: Data(#""]}}}}}"#.utf8))
        let decoded = try #require(FleetServer.decodeAgentMessage(data))
        #expect(decoded.invalidText)
        guard case .batch(let batch) = decoded.message else {
            Issue.record("not a batch")
            return
        }
        #expect(batch.flowId == "F.1" && batch.seq == 7)
        #expect(FleetServer.decodeAgentMessage(Data([0x00, 0xFF, 0x7B])) == nil)
    }
}
