import Foundation
import Testing
@testable import VQL

/// template(): Go text/template over VQL values.
@Suite struct TemplateTests {
    private func expand(_ template: String, _ expansion: String = "dict()", prefix: String = "") throws -> (String, [String]) {
        let escaped = template.replacingOccurrences(of: "'", with: "\\'")
        let (rows, log) = try TestSupport.run(prefix + "SELECT template(template='\(escaped)', expansion=\(expansion)) AS T FROM scope()")
        return (rows.last?.first ?? "", log)
    }

    @Test func velociraptorsGoldenTemplate() throws {
        let (row, _) = try expand(
            "Hello World!\\n\\nVar1:{{ .Var1 }}\\nNested: {{ Get .Var1 \"Nested\" }}\\nScopeVariable: {{ Scope \"ScopeVariable\" }}\\n",
            "dict(Var1='Hi there', Var2=dict(Nested='Nested'))", prefix: "LET ScopeVariable <= 'I am a scope variable.' ")
        #expect(row == #"{"T":"Hello World!\n\nVar1:Hi there\nNested: \nScopeVariable: I am a scope variable.\n"}"#)
    }

    @Test func controlStructures() throws {
        let cases: [(String, String, String)] = [
            ("{{ .A.B }}", "dict(A=dict(B=5))", "5"),
            ("{{ if .X }}yes{{ else }}no{{ end }}", "dict(X=0)", "no"),
            ("{{ if eq .X 1 }}one{{ else if eq .X 2 }}two{{ else }}many{{ end }}", "dict(X=2)", "two"),
            ("{{ range $i, $e := .L }}{{ $i }}={{ $e }};{{ end }}", "dict(L=['a', 'b'])", "0=a;1=b;"),
            ("{{ range .L }}x{{ else }}empty{{ end }}", "dict(L=[])", "empty"),
            ("{{ with .D }}{{ .K }}{{ end }}", "dict(D=dict(K='v'))", "v"),
            ("{{ .N | printf \"%05d\" }}", "dict(N=42)", "00042"),
            ("{{ printf \"%s-%v\" .A .B }}", "dict(A='x', B=[1, 2])", "x-[1 2]"),
            ("{{- .A -}}  \n  {{ .B }}", "dict(A='a', B='b')", "ab"),
            ("{{ $x := .A }}{{ $x }}{{ $x }}", "dict(A='z')", "zz"),
            ("{{/* a comment */}}{{ len .L }}", "dict(L=[1, 2, 3])", "3"),
            ("{{ .Missing }}", "dict(A=1)", "<no value>"),
            ("{{ index .L 1 }}", "dict(L=['a', 'b'])", "b"),
            ("{{ and .A .B }} {{ or .C .A }} {{ not .A }}", "dict(A=1, B=2, C=0)", "2 1 false"),
            ("{{ .D }}", "dict(D=dict(b=2, a=1))", "map[a:1 b:2]"),
        ]
        for (template, expansion, expected) in cases {
            let (row, log) = try expand(template, expansion)
            let json = JSONWriter.string(.string(expected))
            #expect(row == #"{"T":\#(json)}"#, "\(template) \(log)")
        }
    }

    @Test func htmlEscaping() throws {
        let (row, _) = try TestSupport.run("SELECT template(template='<b>{{ .X }}</b>', expansion=dict(X='<i>&'), html=TRUE) AS T FROM scope()")
        #expect(row.last == [#"{"T":"<b>&lt;i&gt;&amp;</b>"}"#])
    }

    @Test func badTemplatesAreLoggedErrors() throws {
        for bad in ["{{ if .X }}open", "{{ end }}", "{{ .X ", "{{ nosuch 1 }}", "{{ template \"x\" }}", "{{ (1 }}"] {
            let (row, log) = try expand(bad, "dict(X=1)")
            #expect(row == #"{"T":null}"#, "\(bad)")
            #expect(log.contains { $0.hasPrefix("ERROR") && $0.contains("template") }, "\(bad): \(log)")
        }
    }

    @Test func deepNestingHitsTheLimit() throws {
        let deep = String(repeating: "{{ if 1 }}", count: 500) + "x" + String(repeating: "{{ end }}", count: 500)
        let (row, log) = try expand(deep)
        #expect(row == #"{"T":null}"#)
        #expect(log.contains { $0.contains("nested more than") })
        let parens = "{{ " + String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500) + " }}"
        let (row2, log2) = try expand(parens)
        #expect(row2 == #"{"T":null}"#)
        #expect(log2.contains { $0.contains("nested too deeply") })
    }

    @Test func rangeOutputIsBounded() throws {
        // A range that would print past the output limit stops with an error.
        let big = try TestSupport.run("""
            LET S <= join(array={ SELECT 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' FROM range(end=16384) }, sep='')
            SELECT template(template='{{ range .L }}{{ $.S }}{{ end }}', expansion=dict(L=100, S=S)) AS T FROM scope()
            """)
        #expect(big.rows.last == [#"{"T":null}"#])
        #expect(big.log.contains { $0.contains("output larger than") })
    }
}
