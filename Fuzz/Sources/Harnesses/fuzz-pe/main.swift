import FuzzDriver
import FuzzQuery

// parse_pe on arbitrary bytes: headers, sections, imports, exports, resources, version info,
// Authenticode signatures; every lazy column is forced.
let harness = QueryHarness("SELECT parse_pe(file=Data, accessor='data') AS PE FROM scope()")

runFuzzer { bytes in harness.run(bytes) }
