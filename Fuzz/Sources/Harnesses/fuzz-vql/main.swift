import FuzzDriver
import VQL

// The language front end on arbitrary text: lexer, parser (statements, expressions, lambdas) and
// binder against the language core's registry. A statement that parses must print canonically to text that
// parses again (the canonical printer feeds EXPLAIN, artifact display and the REPL).
let registry = CoreLibrary.registry()

runFuzzer(samples: {
    [
        "SELECT * FROM info()",
        "LET X = SELECT Name, Pid FROM pslist() WHERE Name =~ 'ssh' SELECT * FROM foreach(row=X, query={ SELECT * FROM stat(filename=Name) }) LIMIT 5",
        "SELECT count() AS C, format(format='%v-%d', args=[A, 1]) FROM scope() GROUP BY A ORDER BY C DESC",
        "LET f(x, y) = x + y * 2 SELECT f(x=1, y=[1, 2][-1]), dict(a={ SELECT 1 FROM scope() }).a, x => x.Foo FROM scope()",
        "SELECT '''raw''', \"esc\\n\", 0x10, 1.5e3, NOT TRUE AND NULL OR 3 IN (1, 2, 3) FROM scope() -- comment",
    ].map { Array($0.utf8) }
}) { bytes in
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? Lexer.tokenize(text)
    _ = try? Parser.parseExpression(text)
    _ = try? Parser.parseLambda(text)
    guard let statements = try? Parser.parse(text) else { return }
    _ = Binder.check(statements, registry: registry)
    for statement in statements {
        let printed = CanonicalPrinter.print(statement)
        fuzzCheck((try? Parser.parse(printed)) != nil, "canonical text does not parse again: \(printed)")
    }
}
