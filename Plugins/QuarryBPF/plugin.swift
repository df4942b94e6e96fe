import Foundation
import PackagePlugin

/// Compiles the BPF programs of a target (its `BPF/*.bpf.c`, excluded from the Swift sources)
/// with clang's BPF backend on every build and embeds the objects in a generated Swift file, so
/// the binary never depends on a checked-in blob and `swift build` alone is enough.
@main
struct QuarryBPF: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "Sources/\(target.name)/BPF")
        let headers = context.package.directoryURL.appending(path: "Sources/CLibBPF")
        let manager = FileManager.default
        let programs = try manager.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".bpf.c") }.sorted()
            .map { directory.appending(path: $0) }
        let inputs = try manager.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".c") || $0.hasSuffix(".h") }.sorted()
            .map { directory.appending(path: $0) }
            + [headers.appending(path: "quarry_events.h")]
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedBPF.swift")
        var arguments = ["--output", output.path, "--include", directory.path, "--include", headers.path]
        // Hints for finding clang: the toolchain's own (next to swiftc), then the tool's search.
        if let clang = try? context.tool(named: "clang") { arguments += ["--clang-hint", clang.url.path] }
        if let swiftc = try? context.tool(named: "swiftc") {
            arguments += ["--clang-hint", swiftc.url.deletingLastPathComponent().appending(path: "clang").path]
        }
        arguments += programs.map(\.path)
        var environment: [String: String] = [:]
        for key in ["CLANG", "PATH"] {
            if let value = ProcessInfo.processInfo.environment[key] { environment[key] = value }
        }
        return [
            .buildCommand(
                displayName: "Compiling BPF programs of \(target.name)",
                executable: try context.tool(named: "quarry-bpf-embed").url,
                arguments: arguments, environment: environment,
                inputFiles: inputs, outputFiles: [output]),
        ]
    }
}
