/// Aggregate functions: state lives per call site in the current aggregate context (per group
/// under GROUP BY, per parenthesised LET call).
public enum Aggregates {
    public static let all: [FunctionDeclaration] = [count, sum, min, max, enumerate]

    public static let count = FunctionDeclaration(
        name: "count", summary: "Counts rows (per group under GROUP BY). `items` is accepted and ignored.",
        arguments: [ArgumentSpec("items", .any, "Ignored (kept for compatibility).")], returns: .int,
        examples: ["SELECT count() AS N FROM range(end=10) GROUP BY 1"], isAggregate: true
    ) { ctx in
        .int(ctx.env.aggregates.increment(ctx.site.id))
    }

    public static let sum = FunctionDeclaration(
        name: "sum", summary: "Sums `item` over the rows of the group.",
        arguments: [ArgumentSpec("item", .any, required: true, "The number to add.")], returns: .any,
        examples: ["SELECT sum(item=_value) AS Total FROM range(end=4) GROUP BY 1"], isAggregate: true
    ) { ctx in
        let item = ctx.value("item") ?? .null
        let total = ctx.state.map { Value.add($0, item) } ?? item
        ctx.state = total
        return total
    }

    public static let min = FunctionDeclaration(
        name: "min", summary: "The smallest `item` seen in the group (strings compare lexically).",
        arguments: [ArgumentSpec("item", .any, required: true, "The value to compare.")],
        examples: ["SELECT min(item=_value) AS Min FROM range(end=4) GROUP BY 1"], isAggregate: true
    ) { ctx in
        let item = ctx.value("item") ?? .null
        guard let current = ctx.state else {
            ctx.state = item
            return item
        }
        if let c = Value.vqlCompare(item, current), c < 0 { ctx.state = item }
        return ctx.state ?? item
    }

    public static let max = FunctionDeclaration(
        name: "max", summary: "The largest `item` seen in the group (strings compare lexically).",
        arguments: [ArgumentSpec("item", .any, required: true, "The value to compare.")],
        examples: ["SELECT max(item=_value) AS Max FROM range(end=4) GROUP BY 1"], isAggregate: true
    ) { ctx in
        let item = ctx.value("item") ?? .null
        guard let current = ctx.state else {
            ctx.state = item
            return item
        }
        if let c = Value.vqlCompare(item, current), c > 0 { ctx.state = item }
        return ctx.state ?? item
    }

    public static let enumerate = FunctionDeclaration(
        name: "enumerate", summary: "Collects `items` of every row of the group into a list.",
        arguments: [ArgumentSpec("items", .any, required: true, "The value to collect.")], returns: .list,
        examples: ["SELECT enumerate(items=_value) AS All FROM range(end=3) GROUP BY 1"], isAggregate: true
    ) { ctx in
        let item = (ctx.value("items") ?? .null).materialized()
        var list: [Value] = []
        if case .list(let existing)? = ctx.state { list = existing }
        ctx.state = .null
        list.append(item)
        ctx.state = .list(list)
        return .list(list)
    }
}
