import FuzzDriver
import FuzzQuery
import VQL

// VQL's JSON parser on arbitrary text, directly and through parse_json, parse_json_array and
// parse_jsonl. A value that parses must write out as JSON that parses back to the same value.
let harness = QueryHarness("""
    SELECT parse_json(data=Data) AS J, parse_json_array(data=Data) AS A FROM scope()
    SELECT * FROM parse_jsonl(filename=Data, accessor='data')
    """)

runFuzzer(samples: {
    [#"{"a":[1,2.5,-3e10,true,null,"\u00e9\ud83d\ude00"],"b":{"c":"d"}}"#, "[1,2,3]\n{\"x\":1}\n"].map { Array($0.utf8) }
}) { bytes in
    if let value = try? JSONParser.parse(bytes: bytes) {
        let written = JSONWriter.string(value)
        let again = try? JSONParser.parse(written)
        fuzzCheck(again.map { JSONWriter.string($0) } == written, "JSON written from a parsed value does not read back the same: \(written)")
    }
    harness.run(bytes)
}
