import Artifacts
import FuzzDriver

// The evidence container reader (`quarry collection show`, `query --collection`, the agent) on an
// arbitrary file: the directory, then every member read back (inflated, size and CRC checked).
let scratch = ScratchFolder("container")

runFuzzer { bytes in
    let path = scratch.write(bytes, as: "container.zip")
    guard let reader = try? ZipReader(path: path) else { return }
    for member in reader.members.prefix(64) {
        guard let stream = try? reader.open(member) else { continue }
        var total = 0
        while total < 4 << 20, let chunk = try? stream.read(max: 64 << 10) { total += chunk.count }
    }
}
