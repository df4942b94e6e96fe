import FuzzDriver
import FuzzQuery

// parse_journald on arbitrary bytes: the journal header, object chains, entry arrays and
// compressed payloads (xz, lz4, zstd), in both the decoded and the raw form.
let harness = QueryHarness("""
    SELECT * FROM parse_journald(filename=Data, accessor='data')
    SELECT * FROM parse_journald(filename=Data, accessor='data', raw=TRUE)
    """)

runFuzzer { bytes in harness.run(bytes) }
