import Synchronization
import Testing
@testable import VQL

/// What a SELECT's WHERE offers the plugin in its FROM: only conditions every kept row must meet.
@Suite struct ColumnConstraintTests {
    private func constraints(_ text: String) throws -> [String] {
        guard case .select(let select)? = try Parser.parse(text).first, let condition = select.whereClause else { return [] }
        var aliases: Set<String> = []
        for column in select.columns { if case .expression(_, let alias?, _) = column { aliases.insert(alias) } }
        return ColumnConstraints.extract(condition, aliases: aliases).map { constraint in
            switch constraint.test {
            case .oneOf(let values): return constraint.dottedPath + " in " + values.map { JSONWriter.string($0) }.joined(separator: ",")
            case .matches(let pattern): return constraint.dottedPath + " =~ " + pattern
            }
        }
    }

    @Test func conjunctsOfLiteralTestsOnColumnsAreOffered() throws {
        #expect(try constraints("""
            SELECT * FROM watch_ebpf(events=['a', 'b'])
            WHERE System.EventName = 'a' AND (2 = System.UserID AND EventData.pathname =~ '^/etc/')
              AND System.ProcessName IN ('bash', 'sh') AND Other > 3
            """) == ["System.EventName in \"a\"", "System.UserID in 2", "EventData.pathname =~ ^/etc/", "System.ProcessName in \"bash\",\"sh\""])
    }

    @Test func nothingThatAnOrANotOrAnAliasCouldLoosenIsOffered() throws {
        #expect(try constraints("SELECT * FROM p() WHERE A = 1 OR B = 2").isEmpty)
        #expect(try constraints("SELECT * FROM p() WHERE NOT A = 1").isEmpty)
        #expect(try constraints("SELECT 1 AS A FROM p() WHERE A = 1").isEmpty)
        #expect(try constraints("SELECT * FROM p() WHERE A = B").isEmpty)
        #expect(try constraints("SELECT * FROM p() WHERE A[0] = 1 AND f(x=A) = 1").isEmpty)
        #expect(try constraints("SELECT * FROM p() WHERE A IN (1, B)").isEmpty)
    }

    @Test func thePluginSeesThemOnlyInItsOwnSelect() throws {
        let registry = CoreLibrary.registry()
        let seen = Mutex<[String]>([])
        registry.add(plugins: [PluginDeclaration(
            name: "probe", summary: "Records the constraints it is offered."
        ) { ctx in
            seen.withLock { $0.append(ctx.constraints.map(\.dottedPath).joined(separator: ",")) }
            return ArrayCursor([.dict(Dict([("A", .int(1))]))])
        }])
        let session = Session(registry: registry)
        _ = try session.run("SELECT * FROM probe() WHERE A = 1 AND B.C =~ 'x'")
        _ = try session.run("SELECT * FROM foreach(row={ SELECT * FROM probe() }) WHERE A = 1")
        #expect(seen.withLock { $0 } == ["A,B.C", ""])
    }
}
