import FuzzDriver
import FuzzQuery
import VQL

// remap() over arbitrary configuration text, then reads through the remapped accessors (mounts,
// shadows, virtual directories above mount points) and the overlay accessor. Only a crash counts.
let harness = QueryHarness("""
    LET _ <= remap(config=Data, clear=TRUE, copy=['data'])
    SELECT OSPath, Size FROM glob(globs='/*/*')
    SELECT read_file(filename='/etc/hostname', length=64) AS H, stat(filename='/x/y') AS S FROM scope()
    LET OVERLAY_ACCESSOR_DELEGATES <= dict(accessor='auto', paths=['/etc', '/'])
    SELECT OSPath FROM glob(globs='host*', accessor='overlay')
    """, maxRows: 200)

runFuzzer(samples: {
    [
        """
        remappings:
        - type: mount
          from: {accessor: data, prefix: ''}
          on: {accessor: file, prefix: /x/y, path_type: linux}
        - type: shadow
          from: {accessor: data}
          "on": {accessor: zip}
        - type: impersonation
          hostname: h
          env: [{key: A, value: b}]
          disabled_plugins: [glob]
        - type: permissions
          permissions: [FILESYSTEM_READ]
        """,
    ].map { Array($0.utf8) }
}) { bytes in
    harness.run(bytes)
}
