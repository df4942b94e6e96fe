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
        if try Self.download(chosen, client: client, into: output) > 0 { throw ExitCode(1) }
    }

    /// Downloads `uploads` into `folder` (made 0700 when missing); prints one line per file and
    /// returns how many failed.
    static func download(_ uploads: [UploadRecord], client: APIClient, into folder: String, label: String = "") throws -> Int {
        try makePrivateFolder(folder)
        var used = Set<String>()
        var failed = 0
        for upload in uploads {
            let local = localName(upload.name, used: &used)
            do {
                try runBlocking { try await client.downloadUpload(upload, to: folder + "/" + local) }
                print("\(label)\(local)\t\(upload.size)\t\(upload.sha256)")
            } catch {
                failed += 1
                printError("\(upload.name): \(error)")
            }
        }
        return failed
    }

    static func makePrivateFolder(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
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

/// `quarry hunt download HUNT --output DIR`: every upload of every flow of a hunt, one folder per
/// client (named by its client ID), each file checked by its SHA-256.
struct DownloadHunt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download", abstract: "Download every file a hunt's flows uploaded, one folder per client (0700; files 0600, checked by SHA-256).")
    @Argument(help: "Hunt ID.") var huntId: String
    @Option(help: "The folder to write (created when missing).") var output: String
    @Option(help: "Only uploads whose name contains this text.") var name: String?
    @OptionGroup var api: APIOptions

    func run() throws {
        let client = try api.client()
        let flows = try runBlocking { try await client.get("/flows", query: ["hunt_id": huntId], as: [FlowRecord].self) }
        try DownloadFlow.makePrivateFolder(output)
        var failed = 0, files = 0
        for flow in flows where flow.uploadedBytes > 0 {
            let view = try runBlocking { try await client.get("/flows/\(APIClient.pathSegment(flow.flowId))", as: FlowView.self) }
            let chosen = view.uploads.filter { name == nil || $0.name.contains(name ?? "") }
            guard !chosen.isEmpty else { continue }
            let folder = flow.clientId.filter { $0.isLetter || $0.isNumber || $0 == "." }
            failed += try DownloadFlow.download(chosen, client: client, into: output + "/" + folder, label: folder + "/")
            files += chosen.count
        }
        printError("\(files - failed) of \(files) files from \(flows.count) flows")
        if failed > 0 { throw ExitCode(1) }
    }
}
