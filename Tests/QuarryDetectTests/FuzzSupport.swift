import Foundation
import QuarryDetect
import QuarryHost
import VQL

/// A small deterministic generator (SplitMix64) so fuzz runs are the same every time.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// A copy of `input` with a few random byte flips, insertions, deletions, truncation or
    /// interesting values (0, 0xFF, 0x7F…) written over it.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            switch below(6) {
            case 0 where !bytes.isEmpty: bytes[below(bytes.count)] ^= UInt8(truncatingIfNeeded: next())
            case 1 where !bytes.isEmpty: bytes[below(bytes.count)] = [0, 0xFF, 0x7F, 0x80, 1][below(5)]
            case 2: bytes.insert(UInt8(truncatingIfNeeded: next()), at: below(bytes.count + 1))
            case 3 where !bytes.isEmpty: bytes.remove(at: below(bytes.count))
            case 4 where !bytes.isEmpty: bytes.removeSubrange(below(bytes.count)...)
            default:
                if bytes.count >= 4 {
                    let at = below(bytes.count - 3)
                    for k in 0..<4 { bytes[at + k] = 0xFF >> (k == 3 ? 1 : 0) }
                }
            }
        }
        return bytes
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Writes bytes to a fresh file in a fresh temporary folder; returns the path.
func writeTemporary(_ bytes: [UInt8], name: String = "input.bin") throws -> String {
    let directory = try temporaryDirectory()
    let path = directory + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// The rows of a query, as JSON text (forces every lazy value, as output does).
func detectJSON(_ text: String) throws -> (json: String, log: [String]) {
    let (rows, log) = try detect(text)
    return (JSONWriter.string(Value.list(rows).materialized()), log)
}

/// A session with the core, host and detection libraries, for tests that run many queries.
func detectSession() -> Session {
    let registry = CoreLibrary.registry()
    registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions)
    registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
    return Session(registry: registry, logger: MemoryLogger())
}

/// How many mutated inputs each in-suite fuzz loop tries. The suite runs every test at once on
/// the machine's cores, and a few thousand debug-build parses per parser held both cores of a
/// 2-core machine for over a minute, starving the time-bounded tests; the deep runs belong to the
/// libFuzzer harnesses (`make fuzz`). `QUARRY_TEST_FUZZ_ITERATIONS=N` asks for more here.
enum FuzzBudget {
    static let iterations: Int = {
        if let text = ProcessInfo.processInfo.environment["QUARRY_TEST_FUZZ_ITERATIONS"], let n = Int(text), n > 0 { return n }
        return 250
    }()
}
