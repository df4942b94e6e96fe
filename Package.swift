// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Quarry",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "quarry", targets: ["quarry"]),
        .library(name: "VQL", targets: ["VQL"]),
        // For the libFuzzer harnesses in Fuzz/ (a separate package that depends on this one by path).
        .library(name: "QuarryHost", targets: ["QuarryHost"]),
        .library(name: "QuarryDetect", targets: ["QuarryDetect"]),
        .library(name: "QuarryAccessors", targets: ["QuarryAccessors"]),
        .library(name: "Artifacts", targets: ["Artifacts"]),
        .library(name: "FleetCore", targets: ["FleetCore"]),
        .library(name: "Fleet", targets: ["Fleet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The fleet: TCP/HTTP/WebSocket (swift-nio), TLS 1.3 with mutual authentication (swift-nio-ssl),
        // the CA and certificate signing (swift-certificates), Prometheus metrics (swift-prometheus).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The server's HTTP layer: router, middleware, request limits, idle timeouts, TLS and the
        // agents' WebSocket (traits off: no swift-configuration, no full Foundation needed).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The fleet datastore's PostgreSQL engine, for several server frontends on one database.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // http_client(): HTTP/1.1 and HTTP/2 over TLS with redirects, timeouts and Unix sockets.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // The web console's server-rendered pages (Mustache templates, HTML-escaped by default).
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // PCRE2 (Debian's libpcre2-dev) gives RE2-compatible, JIT-compiled regular expressions.
        .systemLibrary(
            name: "CPCRE2", path: "Sources/CPCRE2", pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]),
        // Files holding evidence or keys: private (0600) from the system call that creates them.
        .target(name: "PrivateFiles"),
        // The language core: no OS-specific code, no knowledge of host plugins.
        .target(
            name: "VQL", dependencies: ["CPCRE2"],
            // Release builds skip dynamic exclusivity checks: they cost a quarter of the per-row time.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // Detection and parsing libraries from Debian, linked as system libraries.
        .systemLibrary(name: "CYara", path: "Sources/CYara", pkgConfig: "yara", providers: [.apt(["libyara-dev"])]),
        .systemLibrary(name: "CMagic", path: "Sources/CMagic", pkgConfig: "libmagic", providers: [.apt(["libmagic-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Journal payload compression (zstd, xz) for parse_journald.
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZMA", path: "Sources/CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CSQLite3", path: "Sources/CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // libbz2 has no pkg-config file on Debian; the module map links it directly.
        .systemLibrary(name: "CBzip2", path: "Sources/CBzip2", providers: [.apt(["libbz2-dev"])]),
        // Accessors that parse containers (zip, gzip, bzip2, tar, ext4) and the archive functions
        // (unzip, gunzip, compress): hostile bytes, bounded, reached only through delegates.
        .target(
            name: "QuarryAccessors",
            dependencies: ["VQL", "CZlib", "CBzip2", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "Yams", package: "Yams")]),
        // Plugins that find evil and read formats: YARA, libmagic, SQLite files, parsers, uploads.
        .target(
            name: "QuarryDetect",
            dependencies: [
                "VQL", "PrivateFiles", "CYara", "CMagic", "CSQLite3", "CZstd", "CLZMA", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // Artifacts: the YAML model, repository, compilation to VQL and the Artifact.NAME plugins.
        .target(
            name: "Artifacts",
            dependencies: ["VQL", "PrivateFiles", "CZlib", .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto")]),
        // Plugins over the live Linux host: /proc, files, sockets, hashes, users, system facts.
        .target(
            name: "QuarryHost",
            dependencies: ["VQL", "CResponse", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // Network plugins: http_client (on AsyncHTTPClient) and netcat.
        .target(
            name: "QuarryNet",
            dependencies: [
                "VQL", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // libbpf (Debian's libbpf-dev) loads Quarry's BPF programs; libsystemd (libsystemd-dev) reads the journal.
        .systemLibrary(name: "CLibBPF", path: "Sources/CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // Kernel headers for the event fallbacks (fanotify, inotify, process connector, audit netlink).
        .systemLibrary(name: "CLinuxEvents", path: "Sources/CLinuxEvents"),
        // Compiles Sources/QuarryEvents/BPF/*.bpf.c with clang's BPF target at build time and embeds them.
        .executableTarget(name: "quarry-bpf-embed"),
        .plugin(name: "QuarryBPF", capability: .buildTool(), dependencies: ["quarry-bpf-embed"]),
        // Event plugins (never-ending queries): eBPF with its fallbacks, log and journal followers,
        // audit, and the process tracker service they feed.
        .target(
            name: "QuarryEvents",
            dependencies: ["VQL", "QuarryHost", "CLibBPF", "CSystemd", "CLinuxEvents"],
            exclude: ["BPF"],
            plugins: ["QuarryBPF"]),
        // pidfd and xattr system calls for the response actions.
        .systemLibrary(name: "CResponse", path: "Sources/CResponse"),
        // Response on the endpoint (REMEDIATION): pskill, file quarantine and restore, nftables isolation.
        .target(
            name: "QuarryResponse",
            dependencies: ["VQL", "PrivateFiles", "CResponse", .product(name: "Crypto", package: "swift-crypto")]),
        // The offline collector: a spec built into one file that someone on site runs (optionally
        // a self-extracting bundle with every library), and sealed (encrypted) containers.
        .systemLibrary(
            name: "COpenSSLCrypto", path: "Sources/COpenSSLCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "QuarryCollector",
            dependencies: [
                "VQL", "Artifacts", "QuarryDetect", "PrivateFiles", "CZlib", "COpenSSLCrypto", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]),
        .executableTarget(
            name: "quarry",
            dependencies: [
                "VQL", "QuarryHost", "QuarryEvents", "QuarryResponse", "QuarryDetect", "QuarryNet", "QuarryAccessors", "Artifacts", "QuarryCollector", "FleetCore", "Fleet", "FleetPostgres", "PrivateFiles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        // The fleet's core without networking: records, the datastore interface and its SQLite engine,
        // the hunt planner (a pure state machine) and cron schedules.
        .target(name: "FleetCore", dependencies: ["CSQLite3", "PrivateFiles"]),
        // The fleet datastore on PostgreSQL (same `FleetStore` interface, same migrations), for
        // several server processes sharing one database.
        .target(
            name: "FleetPostgres",
            dependencies: ["FleetCore", .product(name: "PostgresNIO", package: "postgres-nio")]),
        // The web console's parts that know no networking: password hashing (scrypt), sessions and
        // CSRF tokens, the embedded templates and assets, and the page renderer.
        .target(
            name: "QuarryConsole",
            dependencies: [
                "FleetCore", .product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]),
        // The fleet over the network: PKI, configs, server (agent channel + analyst API + metrics),
        // agent (enrolment, on-disk result queue), API client and the server-side VQL plugins.
        .target(
            name: "Fleet",
            dependencies: [
                "FleetCore", "VQL", "Artifacts", "PrivateFiles", "QuarryConsole",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // A throwaway PostgreSQL server for the tests (initdb + pg_ctl on a Unix socket).
        .target(name: "FleetTestSupport", dependencies: ["FleetPostgres", .product(name: "PostgresNIO", package: "postgres-nio")]),
        // Many simulated agents in one process (real enrolment, certificates and mutual TLS) for load tests.
        .executableTarget(
            name: "quarry-agent-sim",
            dependencies: ["Fleet", "FleetCore", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio")]),
        // The fixture plugins of Velociraptor's VQL test corpus, and the runner that compares results.
        .target(name: "VQLConformance", dependencies: ["VQL"]),
        .executableTarget(name: "vql-conformance", dependencies: ["VQLConformance"]),
        .testTarget(name: "VQLTests", dependencies: ["VQL", "VQLConformance"], exclude: ["Golden"]),
        .testTarget(name: "QuarryHostTests", dependencies: ["QuarryHost", "VQL"]),
        .testTarget(name: "QuarryCLITests", exclude: ["Support"]),
        .testTarget(name: "QuarryDetectTests", dependencies: ["QuarryDetect", "QuarryHost", "VQL", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "QuarryNetTests", dependencies: ["QuarryNet", "VQL", "QuarryHost"]),
        .testTarget(name: "FleetCoreTests", dependencies: ["FleetCore"]),
        .testTarget(name: "QuarryConsoleTests", dependencies: ["QuarryConsole", "FleetCore"]),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "FleetCore", "FleetTestSupport"]),
        // One behaviour suite run against every datastore engine (SQLite, and a PostgreSQL it starts).
        .testTarget(
            name: "FleetStoreContractTests",
            dependencies: ["FleetCore", "FleetPostgres", "FleetTestSupport", .product(name: "PostgresNIO", package: "postgres-nio")]),
        .testTarget(name: "QuarryAccessorsTests", dependencies: ["QuarryAccessors", "QuarryHost", "QuarryDetect", "VQL"]),
        .testTarget(name: "ArtifactsTests", dependencies: ["Artifacts", "QuarryDetect", "QuarryHost", "QuarryAccessors", "VQL"]),
        .testTarget(name: "QuarryEventsTests", dependencies: ["QuarryEvents", "QuarryHost", "VQL"]),
        .testTarget(name: "QuarryCollectorTests", dependencies: ["QuarryCollector", "Artifacts"]),
        .testTarget(name: "QuarryResponseTests", dependencies: ["QuarryResponse", "VQL", "CResponse", "Artifacts"]),
    ],
    swiftLanguageModes: [.v6]
)
