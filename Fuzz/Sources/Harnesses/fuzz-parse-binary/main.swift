import FuzzDriver
import FuzzQuery
import VQL

// parse_binary on an arbitrary profile and arbitrary bytes: the input is the profile (JSON), a NUL
// byte, then the data; the struct parsed is `Root`.
let harness = QueryHarness("SELECT parse_binary(accessor='data', filename=Data, profile=Profile, struct='Root') AS Parsed FROM scope()")

runFuzzer(samples: {
    let profile = #"""
    [["Root", 0, [
        ["Magic", 0, "String", {"length": 4}],
        ["Count", 4, "uint16"],
        ["Big", 6, "uint32b"],
        ["Kind", 10, "Enumeration", {"type": "uint8", "choices": {"1": "A", "2": "B"}}],
        ["Bits", 11, "Flags", {"type": "uint8", "bitmap": {"X": 0, "Y": 3}}],
        ["Items", 12, "Array", {"type": "Entry", "count": "x=>x.Count"}],
        ["When", 0, "Timestamp", {"type": "uint32"}],
        ["Name", 2, "String", {"encoding": "utf16", "length": 8}],
        ["Next", 4, "Pointer", {"type": "Entry", "pointer_type": "uint16"}],
     ]],
     ["Entry", "x=>2 + x.Len", [
        ["Len", 0, "uint8"],
        ["Tag", 1, "uint8"],
        ["Body", 2, "String", {"length": "x=>x.Len"}],
        ["Pick", 0, "Union", {"selector": "x=>x.Tag", "choices": {"1": "Small"}}],
     ]],
     ["Small", 1, [["V", 0, "int8"]]],
    ]
    """#
    let data: [UInt8] = Array("QFZ1".utf8) + [2, 0, 0, 0, 0, 9, 1, 0b1001] + [1, 1, 0x41, 2, 1, 0x42, 0x43]
    return [Array(profile.utf8) + [0] + data]
}) { bytes in
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    let profile = String(decoding: bytes[..<split], as: UTF8.self)
    let data = split < bytes.endIndex ? Array(bytes[(split + 1)...]) : []
    harness.run(data, variables: ["Profile": .string(profile)])
}
