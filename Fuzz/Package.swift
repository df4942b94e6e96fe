// swift-tools-version: 6.1
import PackageDescription

// libFuzzer harnesses for Quarry's parsers of hostile input: one small executable per harness, built
// with `swift build -c release -Xswiftc -sanitize=fuzzer,address` (see `make fuzz` and
// docs/fuzzing.md). A separate package so that `make test` and CI never build them.

/// A harness: an executable over FuzzSupport and the main package's libraries.
func harness(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport", .product(name: "VQL", package: "Quarry"), .product(name: "QuarryLibraries", package: "Quarry")],
        path: "Sources/Harnesses/\(name)")
}

let harnesses = [
    "fuzz-vql", "fuzz-artifact-yaml", "fuzz-agent-message", "fuzz-server-message", "fuzz-container-zip", "fuzz-zip-accessor",
    "fuzz-archives", "fuzz-ext4", "fuzz-parse-binary", "fuzz-pe", "fuzz-x509", "fuzz-plist", "fuzz-leveldb", "fuzz-journald",
    "fuzz-auditd", "fuzz-utmp", "fuzz-json",
]

let package = Package(
    name: "QuarryFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "Quarry", path: "..")],
    targets: [
        // The libFuzzer driver glue, seed writing and a VQL session over the input bytes.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "VQL", package: "Quarry"), .product(name: "QuarryLibraries", package: "Quarry"),
            ]),
    ] + harnesses.map(harness),
    swiftLanguageModes: [.v6]
)
