import Foundation
import FuzzDriver
import FuzzQuery
import VQL

// index_search() query strings over a small index (words, phrases, prefixes, fields, ranges,
// required and excluded clauses), and index() over arbitrary rows: the input is also indexed as a
// field value, so the tokenizer and the number and date readers meet it too.
// In /dev/shm when there is one: SQLite syncs each commit, and on a disk that costs more than the search.
let scratch = FileManager.default.fileExists(atPath: "/dev/shm") ? ScratchFolder("index", root: "/dev/shm") : ScratchFolder("index")
let folder = scratch.path + "/ix"
let setup = QueryHarness("""
    SELECT * FROM index(output=Folder, purge=TRUE, silent=TRUE, mapping=dict(Port='number', Seen='date', Name='keyword'),
        query={ SELECT * FROM chain(
            a={ SELECT 'web1' AS Host, 'sshd accepted password for root' AS Message, 22 AS Port, 'sshd' AS Name,
                '2026-01-02T03:04:05Z' AS Seen, dict(Pid=1) AS Process FROM scope() },
            b={ SELECT 'db1' AS Host, 'syslog restarted' AS Message, 514 AS Port, 'rsyslogd' AS Name,
                'yesterday' AS Seen, dict(Pid=2) AS Process FROM scope() }) })
    """, variables: ["Folder": .string(folder)])
setup.run([])
let harness = QueryHarness("""
    SELECT * FROM index_search(path=Folder, search=Data, sort='-Port', start=0)
    SELECT * FROM index(output=Scratch, purge=TRUE, silent=TRUE, mapping=dict(Seen='date', Port='number'),
        query={ SELECT Data AS Message, Data AS Seen, Data AS Port FROM scope() })
    SELECT * FROM index_search(path=Scratch, search=Data)
    """, variables: ["Folder": .string(folder), "Scratch": .string(scratch.path + "/scratch")], maxRows: 200)

runFuzzer(samples: {
    ["+Host:web1 -syslog", "\"accepted password\" Port:>=22", "Name:rsys* Process.Pid:1", "Seen:>1000 root*"].map { Array($0.utf8) }
}) { bytes in
    harness.run(bytes)
}
