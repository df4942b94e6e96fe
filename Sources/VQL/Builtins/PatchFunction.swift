import Foundation

/// `patch()`: edits a value with a JSON Patch (RFC 6902: add, remove, replace, move, copy, test
/// on JSON Pointer paths) or a JSON Merge Patch (RFC 7386: keys set, NULL deletes, dicts merge).
/// Settings and monitoring tables are updated this way without rebuilding them by hand.
public enum PatchFunction {
    public static let function = FunctionDeclaration(
        name: "patch",
        summary: "Applies a JSON Patch (`patch`, a list of operations) or a JSON Merge Patch (`merge`) to `item` and returns the result; NULL (and a logged error) when an operation fails.",
        arguments: [
            ArgumentSpec("item", .any, required: true, "The value to patch."),
            ArgumentSpec("patch", .any, "A JSON Patch: a list of {op, path, value, from} (or its JSON text)."),
            ArgumentSpec("merge", .any, "A JSON Merge Patch: a dict (or its JSON text)."),
        ],
        examples: [
            "SELECT patch(item=dict(A=1, B=2), merge=dict(B=NULL, C=3)) AS P FROM scope()",
            "SELECT patch(item=dict(L=[1, 2]), patch=[dict(op='add', path='/L/0', value=0)]) AS P FROM scope()",
        ]
    ) { ctx in
        var result = (ctx.value("item") ?? .null).materialized()
        do {
            if let merge = ctx.value("merge") {
                result = mergePatch(result, try decoded(merge))
            }
            if let patch = ctx.value("patch") {
                guard case .list(let operations) = try decoded(patch) else { throw PatchError("a JSON Patch is a list of operations") }
                for operation in operations { result = try apply(operation, to: result) }
            }
        } catch {
            ctx.log(.error, "patch(): \(error)")
            return .null
        }
        return result
    }

    struct PatchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// JSON text is parsed; anything else is used as a value.
    static func decoded(_ value: Value) throws -> Value {
        if let text = value.stringValue {
            do { return try JSONParser.parse(text).materialized() } catch { throw PatchError("invalid JSON: \(error)") }
        }
        return value.materialized()
    }

    /// RFC 7386: a dict patch merges key by key (NULL removes), anything else replaces the target.
    static func mergePatch(_ target: Value, _ patch: Value) -> Value {
        guard case .dict(let changes) = patch else { return patch }
        var result: Dict
        if case .dict(let d) = target { result = d } else { result = Dict() }
        for (key, value) in changes.pairs {
            if value.isNull {
                result[key] = nil
            } else {
                result[key] = mergePatch(result[key] ?? .null, value)
            }
        }
        return .dict(result)
    }

    static func apply(_ operation: Value, to document: Value) throws -> Value {
        guard case .dict(let op) = operation, let name = op["op"]?.stringValue, let path = op["path"]?.stringValue else {
            throw PatchError("each operation needs 'op' and 'path'")
        }
        let pointer = try tokens(path)
        switch name {
        case "add":
            guard let value = op["value"] else { throw PatchError("add needs a value") }
            return try edit(document, pointer[...], .add(value))
        case "remove":
            return try edit(document, pointer[...], .remove)
        case "replace":
            guard let value = op["value"] else { throw PatchError("replace needs a value") }
            return try edit(document, pointer[...], .replace(value))
        case "move", "copy":
            guard let fromPath = op["from"]?.stringValue else { throw PatchError("\(name) needs 'from'") }
            let from = try tokens(fromPath)
            let value = try lookup(document, from[...])
            let source = name == "move" ? try edit(document, from[...], .remove) : document
            return try edit(source, pointer[...], .add(value))
        case "test":
            let expected = (op["value"] ?? .null).materialized()
            let actual = try lookup(document, pointer[...])
            guard JSONWriter.string(actual) == JSONWriter.string(expected) else { throw PatchError("test failed at '\(path)'") }
            return document
        default:
            throw PatchError("unknown operation '\(name)'")
        }
    }

    /// JSON Pointer tokens, with ~1 → / and ~0 → ~ unescaped.
    static func tokens(_ path: String) throws -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw PatchError("path '\(path)' must start with /") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    enum Change {
        case add(Value), remove, replace(Value)
    }

    static func lookup(_ document: Value, _ path: ArraySlice<String>) throws -> Value {
        guard let token = path.first else { return document }
        switch document {
        case .dict(let d):
            guard let child = d.keys.contains(token) ? d[token] : nil else { throw PatchError("no member '\(token)'") }
            return try lookup(child, path.dropFirst())
        case .list(let items):
            guard let index = Int(token), items.indices.contains(index) else { throw PatchError("no element '\(token)'") }
            return try lookup(items[index], path.dropFirst())
        default:
            throw PatchError("cannot descend into a \(document.typeName) at '\(token)'")
        }
    }

    /// The document with `change` made at `path` (a copy: values are immutable).
    static func edit(_ document: Value, _ path: ArraySlice<String>, _ change: Change) throws -> Value {
        guard let token = path.first else {
            switch change {
            case .add(let value), .replace(let value): return value
            case .remove: throw PatchError("cannot remove the whole document")
            }
        }
        let last = path.count == 1
        switch document {
        case .dict(var d):
            let present = d.keys.contains(token)
            if last {
                switch change {
                case .add(let value): d[token] = value
                case .replace(let value):
                    guard present else { throw PatchError("no member '\(token)' to replace") }
                    d[token] = value
                case .remove:
                    guard present else { throw PatchError("no member '\(token)' to remove") }
                    d[token] = nil
                }
                return .dict(d)
            }
            guard present, let child = d[token] else { throw PatchError("no member '\(token)'") }
            d[token] = try edit(child, path.dropFirst(), change)
            return .dict(d)
        case .list(var items):
            if last, case .add(let value) = change {
                if token == "-" { items.append(value); return .list(items) }
                guard let index = Int(token), index >= 0, index <= items.count else { throw PatchError("bad index '\(token)'") }
                items.insert(value, at: index)
                return .list(items)
            }
            guard let index = Int(token), items.indices.contains(index) else { throw PatchError("no element '\(token)'") }
            if last {
                switch change {
                case .replace(let value): items[index] = value
                case .remove: items.remove(at: index)
                case .add: break
                }
                return .list(items)
            }
            items[index] = try edit(items[index], path.dropFirst(), change)
            return .list(items)
        default:
            throw PatchError("cannot descend into a \(document.typeName) at '\(token)'")
        }
    }
}
