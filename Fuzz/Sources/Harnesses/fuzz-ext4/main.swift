import FuzzDriver
import FuzzQuery

// The ext4 reader (raw_ext4: superblock, group descriptors, inodes, extents, directories) on an
// arbitrary image held in memory: every file listed and its first bytes read.
let harness = QueryHarness("""
    SELECT OSPath.Path AS Path, Size, Mode, Mtime, read_file(filename=OSPath, accessor='raw_ext4', length=65536) AS Head
    FROM glob(globs='**', root=pathspec(DelegateAccessor='data', DelegatePath=Data), accessor='raw_ext4')
    """)

runFuzzer { bytes in harness.run(bytes) }
