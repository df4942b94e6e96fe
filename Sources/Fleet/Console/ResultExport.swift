import FleetCore
import Foundation
import Hummingbird
import VQL

/// Streams every row of one hunt source as CSV or JSON lines, read from the datastore a chunk at a
/// time (the server holds one chunk, whatever the hunt's size), for spreadsheets and other tools.
/// CSV columns are the client and flow, then the first row's columns (a later row's extra columns
/// are left out; missing ones are empty). A cell that a spreadsheet would run as a formula (=, +,
/// -, @ first) is prefixed with ' — results hold attacker-controlled text; numbers stay numbers.
enum ResultExport {
    enum Format: String { case csv, jsonl }

    /// One CSV field. `disarm`: text (not a number) that starts like a formula gets a leading '.
    static func cell(_ text: String, disarm: Bool = true) -> String {
        var text = text
        if disarm, let first = text.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A row value as CSV text: strings as they are, everything else as its JSON.
    static func text(_ value: Value) -> String {
        switch value {
        case .string(let s): return s
        case .null: return ""
        default: return JSONWriter.string(value)
        }
    }

    /// The columns of a row's JSON (in its order).
    static func columns(_ json: String) -> [String] {
        guard case .dict(let d)? = try? JSONParser.parse(bytes: Array(json.utf8)) else { return [] }
        return d.keys
    }

    static func csvLine(_ row: ResultRow, columns: [String]) -> String {
        let parsed = (try? JSONParser.parse(bytes: Array(row.json.utf8))) ?? .null
        var cells = [cell(row.clientId), cell(row.fqdn), cell(row.flowId)]
        for column in columns {
            let value = parsed.member(column)
            let isText: Bool
            if case .string = value { isText = true } else { isText = false }
            cells.append(cell(text(value), disarm: isText))
        }
        return cells.joined(separator: ",") + "\r\n"
    }

    static func response(store: any FleetStore, query: ResultQuery, format: Format, filename: String, chunk: Int) -> Response {
        let type = format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson"
        var headers: HTTPFields = [.contentType: type]
        headers[.contentDisposition] = "attachment; filename=\"\(filename.filter { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" })\""
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var columns: [String]?
            try await store.streamResults(query, chunk: chunk) { rows in
                var buffer = ByteBuffer()
                for row in rows {
                    switch format {
                    case .jsonl:
                        buffer.writeString(row.json)
                        buffer.writeString("\n")
                    case .csv:
                        if columns == nil {
                            let found = Self.columns(row.json)
                            columns = found
                            buffer.writeString((["ClientId", "Fqdn", "FlowId"] + found).map { cell($0) }.joined(separator: ",") + "\r\n")
                        }
                        buffer.writeString(csvLine(row, columns: columns ?? []))
                    }
                }
                try await writer.write(buffer)
                await Task.yield()
            }
            try await writer.finish(nil)
        })
    }
}
