import Foundation
import VQL

/// efivariables(): UEFI variables from Linux's efivarfs (Secure Boot keys PK/KEK/db/dbx, boot
/// entries). Each file there is NAME-GUID holding 4 bytes of attributes then the data; Value is
/// the whole file (attributes first), as Velociraptor's Secure Boot artifact expects.
public enum EFIVariablesPlugin {
    /// The efivarfs folder; tests point the `efivariables.folder` service at a folder they made.
    static let defaultFolder = "/sys/firmware/efi/efivars"

    public static let plugin = PluginDeclaration(
        name: "efivariables",
        summary: "UEFI variables (Namespace GUID, Name, Attributes, Size, and with value=TRUE the Value bytes). No rows where the machine has no efivarfs.",
        arguments: [
            ArgumentSpec("namespace", .string, "Only this namespace GUID (braces optional, any case)."),
            ArgumentSpec("name", .string, "Only this variable name."),
            ArgumentSpec("value", .bool, "Also read each variable's bytes."),
        ],
        columns: [
            ColumnSpec("Namespace", .string, "{GUID}"), ColumnSpec("Name", .string), ColumnSpec("Attributes", .int),
            ColumnSpec("Size", .int), ColumnSpec("Value", .string, "attributes (4 bytes) then data"),
        ],
        examples: ["SELECT * FROM chain(a={SELECT Namespace, Name FROM efivariables(name='SecureBoot')}, b={SELECT 'no EFI here' AS Namespace, NULL AS Name FROM scope()}) LIMIT 1"],
        permissions: [.machineState]
    ) { ctx in
        let folder = ctx.context.service("efivariables.folder", as: String.self) ?? defaultFolder
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return ArrayCursor([]) }
        let wantedNamespace = ctx.string("namespace").map(normalize)
        let wantedName = ctx.string("name")
        let withValue = ctx.bool("value") ?? false
        let schema = Schema(["Namespace", "Name", "Attributes", "Size", "Value"])
        var rows: [Value] = []
        for file in names.sorted() {
            // NAME-8-4-4-4-12: the GUID is the last 36 characters.
            guard file.count > 37, file[file.index(file.endIndex, offsetBy: -37)] == "-" else { continue }
            let guid = String(file.suffix(36)).lowercased()
            let name = String(file.dropLast(37))
            if let wantedNamespace, wantedNamespace != guid { continue }
            if let wantedName, wantedName != name { continue }
            let path = folder + "/" + file
            // efivarfs reports sizes, but reading is what counts (some files refuse reads).
            let bytes = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path))).flatMap { handle -> [UInt8]? in
                defer { try? handle.close() }
                return (try? handle.read(upToCount: 16 << 20)).map { [UInt8]($0) }
            }
            var attributes = Value.null
            if let bytes, bytes.count >= 4 {
                attributes = .int(bytes.prefix(4).reversed().reduce(Int64(0)) { $0 << 8 | Int64($1) })
            }
            rows.append(.dict(Dict(schema: schema, values: [
                .string("{\(guid)}"), .string(name), attributes, .int(Int64(max(0, (bytes?.count ?? 4) - 4))),
                withValue ? (bytes.map { .string(bytes: $0) } ?? .null) : .null,
            ])))
        }
        return ArrayCursor(rows)
    }

    static func normalize(_ guid: String) -> String {
        guid.trimmingCharacters(in: CharacterSet(charactersIn: "{} ")).lowercased()
    }
}
