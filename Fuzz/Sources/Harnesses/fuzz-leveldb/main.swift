import FuzzDriver
import FuzzQuery
import VQL

// leveldb() on an arbitrary file, read both as a write-ahead log (.log) and as a sorted table
// (.ldb: blocks, restarts, Snappy); the plugin reads paths, so the input goes to a scratch file.
let scratch = ScratchFolder("leveldb")
let harness = QueryHarness("""
    SELECT * FROM leveldb(file=LogFile)
    SELECT * FROM leveldb(file=TableFile)
    """, variables: ["LogFile": .string(scratch.path + "/000001.log"), "TableFile": .string(scratch.path + "/000002.ldb")])

runFuzzer { bytes in
    scratch.write(bytes, as: "000001.log")
    scratch.write(bytes, as: "000002.ldb")
    harness.run(bytes)
}
