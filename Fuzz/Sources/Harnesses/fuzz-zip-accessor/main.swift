import FuzzDriver
import FuzzQuery

// The zip accessors (zip, zip_nocase: WinZip AES, zip64, nested zips) on arbitrary bytes held in
// memory: every member listed and its first bytes read.
let harness = QueryHarness("""
    SELECT OSPath.Path AS Path, Size, Mode, Mtime, read_file(filename=OSPath, accessor='zip', length=65536) AS Head
    FROM glob(globs='**', root=pathspec(DelegateAccessor='data', DelegatePath=Data), accessor='zip')
    SELECT OSPath.Path AS Path, read_file(filename=OSPath, accessor='zip_nocase', length=4096) AS Head
    FROM glob(globs='*', root=pathspec(DelegateAccessor='data', DelegatePath=Data), accessor='zip_nocase')
    """)

runFuzzer { bytes in harness.run(bytes) }
