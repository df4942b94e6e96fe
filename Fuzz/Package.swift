// swift-tools-version: 6.1
import PackageDescription

// libFuzzer harnesses for Quarry's parsers of hostile input: one small executable per harness, built
// with `swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld` (see
// `make fuzz` and docs/fuzzing.md). A separate package so that `make test` and CI never build them.

/// A product of the main package.
func quarry(_ name: String) -> Target.Dependency { .product(name: name, package: "Quarry") }

/// A harness: an executable over the driver and the parts of Quarry it feeds (only those, so each
/// harness builds as soon as its own modules are built).
func harness(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzDriver"] + dependencies, path: "Sources/Harnesses/\(name)")
}

/// Harnesses that drive a VQL plugin or function over the input (`QueryHarness`).
let queryHarnesses = [
    "fuzz-zip-accessor", "fuzz-archives", "fuzz-ext4", "fuzz-parse-binary", "fuzz-pe", "fuzz-x509", "fuzz-plist", "fuzz-leveldb",
    "fuzz-journald", "fuzz-auditd", "fuzz-utmp", "fuzz-json", "fuzz-sigma", "fuzz-remap", "fuzz-crypto-file", "fuzz-index",
]

let package = Package(
    name: "QuarryFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "Quarry", path: "..")],
    targets: [
        // The libFuzzer driver glue, seed writing and scratch files.
        .target(name: "FuzzDriver"),
        // A VQL session over the input bytes with the host, detection and container libraries.
        .target(name: "FuzzQuery", dependencies: [quarry("VQL"), quarry("QuarryHost"), quarry("QuarryDetect"), quarry("QuarryAccessors")]),
        harness("fuzz-vql", [quarry("VQL")]),
        harness("fuzz-artifact-yaml", [quarry("Artifacts")]),
        harness("fuzz-container-zip", [quarry("Artifacts")]),
        harness("fuzz-agent-message", [quarry("Fleet"), quarry("FleetCore")]),
        harness("fuzz-server-message", [quarry("Fleet"), quarry("FleetCore"), quarry("Artifacts")]),
    ] + queryHarnesses.map { harness($0, ["FuzzQuery", quarry("VQL")]) },
    swiftLanguageModes: [.v6]
)
