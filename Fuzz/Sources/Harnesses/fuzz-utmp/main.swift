import FuzzDriver
import FuzzQuery

// utmp() on arbitrary bytes: wtmp/utmp/btmp records (fixed 384-byte structs, any count).
let harness = QueryHarness("SELECT * FROM utmp(filename=Data, accessor='data')")

runFuzzer(samples: {
    // One USER_PROCESS record: type 7, pid, line, id, user, host, exit, session, time, address.
    var record = [UInt8](repeating: 0, count: 384)
    record[0] = 7
    record[4] = 0x39
    for (i, c) in "pts/0".utf8.enumerated() { record[8 + i] = c }
    for (i, c) in "root".utf8.enumerated() { record[44 + i] = c }
    for (i, c) in "10.0.0.1".utf8.enumerated() { record[76 + i] = c }
    record[340] = 0x00
    record[341] = 0xF1
    record[342] = 0x53
    record[343] = 0x65
    record[348...351] = [10, 0, 0, 1]
    return [record, record + record]
}) { bytes in harness.run(bytes) }
