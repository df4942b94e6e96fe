import FuzzDriver
import FuzzQuery
import VQL

// The stream containers on arbitrary bytes: gzip and bzip2 through their accessors, gunzip(), and
// tar / tar.gz extraction with unzip() into a private scratch folder (emptied after each input).
let scratch = ScratchFolder("archives")
let harness = QueryHarness("""
    SELECT read_file(filename=pathspec(DelegateAccessor='data', DelegatePath=Data), accessor='gzip', length=1048576) AS Gzip,
           read_file(filename=pathspec(DelegateAccessor='data', DelegatePath=Data), accessor='bzip2', length=1048576) AS Bzip2,
           gunzip(string=Data) AS Gunzip
    FROM scope()
    SELECT OriginalPath, Size FROM unzip(filename=Data, accessor='data', type='tar', output_directory=Scratch)
    SELECT OriginalPath, Size FROM unzip(filename=Data, accessor='data', type='tgz', output_directory=Scratch)
    """, variables: ["Scratch": .string(scratch.path)])

runFuzzer { bytes in
    harness.run(bytes)
    scratch.clear()
}
