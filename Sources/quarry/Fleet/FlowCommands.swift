import ArgumentParser
import Fleet
import FleetCore
import Foundation
import VQL

/// `quarry flows show|download`: one flow's state, logs and uploaded files, and the files
/// themselves, brought back from the server into a private folder and checked by their SHA-256.
struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flows", abstract: "One collection on a client: its state and its uploaded files.",
                                                    subcommands: [ShowFlow.self, DownloadFlow.self])
}

struct ShowFlow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "A flow's state, sources, uploads and log.")
    @Argument(help: "Flow ID.") var flowId: String
    @OptionGroup var api: APIOptions
    @OptionGroup var format: FormatOption

    func run() throws {
        let client = try api.client()
        let view = try runBlocking { try await client.get("/flows/\(APIClient.pathSegment(flowId))", as: FlowView.self) }
        let flow = view.flow
        printError("\(flow.flowId) on \(flow.clientId): \(flow.state.rawValue), \(flow.rows) rows, \(view.uploads.count) uploads"
                   + (flow.errors.isEmpty ? "" : "; " + flow.errors.joined(separator: "; ")))
        try format.print(view.uploads.map { upload -> Value in
            .dict(Dict([("Name", .string(upload.name)), ("Size", .int(upload.size)), ("SHA256", .string(upload.sha256)), ("MD5", .string(upload.md5))]))
        })
    }
}

struct DownloadFlow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a flow's uploaded files into a folder (0700; files 0600, each checked against its SHA-256).")
    @Argument(help: "Flow ID.") var flowId: String
    @Option(help: "The folder to write (created when missing).") var output: String
    @Option(help: "Only uploads whose name contains this text.") var name: String?
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let view = try runBlocking { try await client.get("/flows/\(APIClient.pathSegment(flowId))", as: FlowView.self) }
        let chosen = view.uploads.filter { name == nil || $0.name.contains(name ?? "") }
        guard !chosen.isEmpty else { throw ValidationError("flow \(flowId) has no uploads\(name.map { " named like \($0)" } ?? "")") }
        if !FileManager.default.fileExists(atPath: output) {
            guard mkdir(output, 0o700) == 0 else { throw ValidationError("cannot create \(output): \(String(cString: strerror(errno)))") }
        }
        var used = Set<String>()
        var failed = 0
        for upload in chosen {
            let local = Self.localName(upload.name, used: &used)
            do {
                try runBlocking { try await client.downloadUpload(upload, to: output + "/" + local) }
                print("\(local)\t\(upload.size)\t\(upload.sha256)")
            } catch {
                failed += 1
                printError("\(upload.name): \(error)")
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    /// A flat file name for an upload's path: components joined with "_", nothing that climbs out
    /// of the folder or hides (no "/", no leading "."), unique within this download.
    static func localName(_ name: String, used: inout Set<String>) -> String {
        let parts = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).filter { $0 != "." && $0 != ".." }
        var base = parts.joined(separator: "_").filter { $0 != "\0" }
        while base.hasPrefix(".") { base.removeFirst() }
        if base.isEmpty { base = "upload" }
        base = String(base.prefix(200))
        var candidate = base
        var n = 1
        while !used.insert(candidate).inserted {
            n += 1
            candidate = base + "-\(n)"
        }
        return candidate
    }
}
