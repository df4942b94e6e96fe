import FuzzDriver
import FuzzQuery

// plist() on arbitrary bytes: binary plists (bplist00: offset tables, object references, nesting)
// and XML plists.
let harness = QueryHarness("SELECT plist(file=Data, accessor='data') AS Plist FROM scope()")

runFuzzer { bytes in harness.run(bytes) }
