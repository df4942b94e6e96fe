import Foundation
@testable import QuarryDetect
import Testing
import QuarryHost
import VQL

/// sigma() and sigma_log_sources(): rules run over real processes, every modifier and condition
/// form checked against events that must and must not match, and hostile rules refused.
@Suite struct SigmaTests {
    /// Runs `rules` over `events` (JSON lines) fed as the process_creation/linux source.
    static func sigma(_ rules: String, events: [String], extra: String = "") throws -> (rows: [Value], log: [String]) {
        let text = """
            LET Events = SELECT * FROM parse_jsonl(accessor='data', filename=EventText)
            SELECT * FROM sigma(rules=Rules, log_sources=sigma_log_sources(`process_creation/linux/*`=Events)\(extra))
            """
        return try run(text, ["Rules": .string(rules), "EventText": .string(events.joined(separator: "\n"))])
    }

    /// Runs VQL with the rule and event texts bound as variables (no quoting games).
    static func run(_ text: String, _ variables: [String: Value]) throws -> (rows: [Value], log: [String]) {
        let registry = CoreLibrary.registry()
        registry.add(plugins: HostLibrary.plugins, functions: HostLibrary.functions, accessors: HostLibrary.accessors)
        registry.add(plugins: DetectLibrary.plugins, functions: DetectLibrary.functions)
        let logger = MemoryLogger()
        let session = Session(registry: registry, logger: logger, variables: variables)
        let results = try session.run(text)
        return ((results.last ?? nil) ?? [], logger.messages)
    }

    static func rule(_ detection: String, title: String = "T") -> String {
        "title: \(title)\nlogsource: {category: process_creation, product: linux}\ndetection:\n\(detection)"
    }

    @Test func aLinuxRuleFindsARealProcessByItsCommandLine() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["37.4242"]
        child.standardOutput = FileHandle.nullDevice
        try child.run()
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        let rules = """
            title: Long sleep with a marker
            id: 5f0c1a52-0000-4000-8000-000000000001
            level: medium
            tags: [attack.t1497]
            logsource: {category: process_creation, product: linux}
            detection:
              image: {Image|endswith: /sleep}
              marker: {CommandLine|contains: '37.4242'}
              condition: image and marker
            details: 'pid %Pid% runs %CommandLine%'
            """
        let text = """
            LET Processes = SELECT Pid, Exe AS Image, CommandLine, Username AS User FROM pslist()
            SELECT * FROM sigma(rules=Rules, log_sources=sigma_log_sources(`process_creation/linux/*`=Processes))
            """
        let (rows, log) = try Self.run(text, ["Rules": .string(rules)])
        #expect(rows.count == 1, "\(log)")
        let row = try #require(rows.first)
        #expect(row.member("Pid").intValue == Int64(child.processIdentifier))
        #expect(row.member("_Rule").member("Title").stringValue == "Long sleep with a marker")
        #expect(row.member("_Rule").member("Level").stringValue == "medium")
        #expect(row.member("_Rule").member("Logsource").member("Product").stringValue == "linux")
        #expect(row.member("Details").stringValue == "pid \(child.processIdentifier) runs /bin/sleep 37.4242")
    }

    /// (detection, event, should match) — each modifier with an event that must match and one that must not.
    static let cases: [(String, String, Bool)] = [
        ("  s: {F: ABC}\n  condition: s", #"{"F":"abc"}"#, true),
        ("  s: {F|cased: ABC}\n  condition: s", #"{"F":"abc"}"#, false),
        ("  s: {F|cased: ABC}\n  condition: s", #"{"F":"ABC"}"#, true),
        ("  s: {F: 'a*c'}\n  condition: s", #"{"F":"aBBBc"}"#, true),
        ("  s: {F: 'a?c'}\n  condition: s", #"{"F":"abc"}"#, true),
        ("  s: {F: 'a?c'}\n  condition: s", #"{"F":"abbc"}"#, false),
        ("  s: {F: 'a\\*c'}\n  condition: s", #"{"F":"a*c"}"#, true),
        ("  s: {F: 'a\\*c'}\n  condition: s", #"{"F":"abc"}"#, false),
        ("  s: {F: 'C:\\Windows'}\n  condition: s", #"{"F":"c:\\windows"}"#, true),
        ("  s: {F|contains: mid}\n  condition: s", #"{"F":"xxMIDxx"}"#, true),
        ("  s: {F|startswith: ab}\n  condition: s", #"{"F":"xab"}"#, false),
        ("  s: {F|endswith: ab}\n  condition: s", #"{"F":"xab"}"#, true),
        ("  s: {F: [x, y]}\n  condition: s", #"{"F":"Y"}"#, true),
        ("  s: {F|contains|all: [a, z]}\n  condition: s", #"{"F":"a..."}"#, false),
        ("  s: {F|contains|all: [a, z]}\n  condition: s", #"{"F":"a..z"}"#, true),
        ("  s: {F|re: '^a.+z$'}\n  condition: s", #"{"F":"abz"}"#, true),
        ("  s: {F|re: '^A'}\n  condition: s", #"{"F":"abz"}"#, false),
        ("  s: {F|re|i: '^A'}\n  condition: s", #"{"F":"abz"}"#, true),
        ("  s: {N: 4688}\n  condition: s", #"{"N":4688}"#, true),
        ("  s: {N: 4688}\n  condition: s", #"{"N":"4688"}"#, true),
        ("  s: {N: 4688}\n  condition: s", #"{"N":46880}"#, false),
        ("  s: {N|lt: 10}\n  condition: s", #"{"N":9}"#, true),
        ("  s: {N|gte: 10}\n  condition: s", #"{"N":9}"#, false),
        ("  s: {F: null}\n  condition: s", #"{"G":1}"#, true),
        ("  s: {F: null}\n  condition: s", #"{"F":"x"}"#, false),
        ("  s: {F|exists: true}\n  condition: s", #"{"F":"x"}"#, true),
        ("  s: {F|exists: false}\n  condition: s", #"{"F":"x"}"#, false),
        ("  s: {IP|cidr: 10.0.0.0/8}\n  condition: s", #"{"IP":"10.1.2.3"}"#, true),
        ("  s: {IP|cidr: 10.0.0.0/8}\n  condition: s", #"{"IP":"11.0.0.1"}"#, false),
        ("  s: {IP|cidr: 'fe80::/10'}\n  condition: s", #"{"IP":"fe80::1"}"#, true),
        ("  s: {F|base64|contains: secret}\n  condition: s", #"{"F":"xx c2VjcmV0 xx"}"#, true),
        // "/etc/shadow" inside base64 of "cat /etc/shadow" (offset 1 of a group).
        ("  s: {F|base64offset|contains: /etc/shadow}\n  condition: s", #"{"F":"echo Y2F0IC9ldGMvc2hhZG93"}"#, true),
        ("  s: {F|base64offset|contains: /etc/passwd}\n  condition: s", #"{"F":"echo Y2F0IC9ldGMvc2hhZG93"}"#, false),
        ("  s: {F|windash|contains: ' -enc '}\n  condition: s", #"{"F":"powershell /enc AAA"}"#, true),
        ("  s: {A|fieldref: B}\n  condition: s", #"{"A":"same","B":"SAME"}"#, true),
        ("  s: {A|fieldref: B}\n  condition: s", #"{"A":"one","B":"two"}"#, false),
        ("  s:\n    - {A: 1}\n    - {B: 2}\n  condition: s", #"{"B":2}"#, true),
        ("  s: [needle]\n  condition: s", #"{"X":{"Deep":["hay","xxNEEDLExx"]}}"#, true),
        ("  s: [needle]\n  condition: s", #"{"X":"hay"}"#, false),
        ("  s: {Proc.Name: bash}\n  condition: s", #"{"Proc":{"Name":"bash"}}"#, true),
        ("  s: {Tags: b}\n  condition: s", #"{"Tags":["a","b"]}"#, true),
        ("  s: {N|vql: 'x=>x > 5'}\n  condition: s", #"{"N":6}"#, true),
        ("  s: {N|vql: 'x=>x > 5'}\n  condition: s", #"{"N":5}"#, false),
        // Conditions: precedence (and before or), not, parentheses, quantifiers, them without _names.
        ("  a: {A: 1}\n  b: {B: 1}\n  c: {C: 1}\n  condition: a or b and not c", #"{"A":1,"B":1,"C":1}"#, true),
        ("  a: {A: 1}\n  b: {B: 1}\n  c: {C: 1}\n  condition: (a or b) and not c", #"{"A":1,"B":1,"C":1}"#, false),
        ("  sel_a: {A: 1}\n  sel_b: {B: 1}\n  condition: all of sel_*", #"{"A":1}"#, false),
        ("  sel_a: {A: 1}\n  sel_b: {B: 1}\n  condition: 1 of sel_*", #"{"A":1}"#, true),
        ("  a: {A: 1}\n  _b: {B: 1}\n  condition: all of them", #"{"A":1}"#, true),
        ("  a: {A: 1}\n  b: {B: 1}\n  condition: [a, b]", #"{"B":1}"#, true),
    ]

    @Test func modifiersAndConditionsFollowTheSigmaSpecification() throws {
        for (detection, event, expected) in Self.cases {
            let (rows, log) = try Self.sigma(Self.rule(detection), events: [event])
            #expect(rows.count == (expected ? 1 : 0), "\(detection) on \(event): \(log)")
            #expect(!log.contains { $0.contains("refused") }, "\(log)")
        }
    }

    @Test func fieldMappingFilterDebugDetailsAndEnrichment() throws {
        let rules = [
            Self.rule("  s: {CommandLine|contains: evil}\n  condition: s", title: "Mapped")
                + "\nlevel: high\nenrichment: 'x=>dict(Length=len(list=x.cmd))'",
            Self.rule("  s: {CommandLine|contains: evil}\n  condition: s", title: "Low one") + "\nlevel: low",
        ].joined(separator: "\n---\n")
        let mapping = ", field_mapping=dict(CommandLine='x=>x.cmd'), rule_filter='x=>x.Level = \"high\"', default_details='x=>\"cmd was \" + x.cmd'"
        let (rows, log) = try Self.sigma(rules, events: [#"{"cmd":"run evil"}"#, #"{"cmd":"fine"}"#], extra: mapping)
        #expect(rows.count == 1, "\(log)")
        #expect(rows.first?.member("_Rule").member("Title").stringValue == "Mapped")
        #expect(rows.first?.member("Details").stringValue == "cmd was run evil")
        #expect(rows.first?.member("Enrichment").member("Length").intValue == 8)

        let (debugRows, _) = try Self.sigma(Self.rule("  a: {A: 1}\n  b: {B: 1}\n  condition: a and b"),
                                            events: [#"{"A":1}"#], extra: ", debug=TRUE")
        let match = try #require(debugRows.first?.member("_Match"))
        #expect(match.member("Match").isTruthy == false)
        #expect(match.member("SearchResults").member("a").isTruthy)
        #expect(match.member("SearchResults").member("b").isTruthy == false)
    }

    @Test func eachRuleReadsOnlyTheSourceItsLogsourceNames() throws {
        let rules = """
            title: Audit
            logsource: {product: linux, service: auditd}
            detection: {s: {type: EXECVE}, condition: s}
            ---
            title: Proc
            logsource: {category: process_creation, product: linux}
            detection: {s: {type: EXECVE}, condition: s}
            ---
            title: Nobody feeds me
            logsource: {product: windows, service: security}
            detection: {s: {type: EXECVE}, condition: s}
            """
        let text = """
            LET Audit = SELECT 'EXECVE' AS type, 'audit' AS Source FROM scope()
            LET Proc = SELECT 'EXECVE' AS type, 'proc' AS Source FROM scope()
            SELECT Source, _Rule.Title AS Title FROM sigma(rules=Rules,
                log_sources=sigma_log_sources(`*/Linux/auditd`=Audit, `process_creation/linux/*`=Proc))
            """
        let (rows, log) = try Self.run(text, ["Rules": .string(rules)])
        let seen = rows.map { "\($0.member("Source").stringValue ?? "")>\($0.member("Title").stringValue ?? "")" }
        #expect(seen == ["audit>Audit", "proc>Proc"], "\(log)")
        #expect(log.contains { $0.contains("no log source") && $0.contains("*/windows/security") }, "\(log)")
    }

    @Test func hostileAndBrokenRulesAreRefusedWithAReason() throws {
        let deep = String(repeating: "(", count: 10_000) + "a" + String(repeating: ")", count: 10_000)
        let broken: [(String, String)] = [
            (Self.rule("  a: {A: 1}\n  condition: \(deep)"), "nested more than"),
            (Self.rule("  sel: {A: 1}\n  condition: sell"), "did you mean 'sel'"),
            (Self.rule("  sel: {A|sideways: 1}\n  condition: sel"), "unknown modifier 'sideways'"),
            (Self.rule("  sel: {A: 1}\n  condition: sel | count() > 5"), "aggregations"),
            (Self.rule("  sel: {A|re: '(unclosed'}\n  condition: sel"), "invalid regular expression"),
            ("title: x\ndetection: {a: {A: 1}}", "no condition"),
            ("- just\n- a list", "must be a YAML mapping"),
            ("title: [unclosed", "not YAML"),
        ]
        for (rule, reason) in broken {
            let (rows, log) = try Self.sigma(rule, events: [#"{"A":1}"#])
            #expect(rows.isEmpty)
            #expect(log.contains { $0.contains("refused") && $0.contains(reason) }, "\(reason): \(log)")
        }
        // A good rule next to a broken one still runs.
        let (rows, _) = try Self.sigma(Self.rule("  a: {A: 1}\n  condition: a") + "\n---\n" + broken[0].0, events: [#"{"A":1}"#])
        #expect(rows.count == 1)
        // log_sources must be the real thing.
        #expect(throws: (any Error).self) { _ = try detect("SELECT * FROM sigma(rules='x', log_sources=dict(a=1))") }
    }

    @Test func mutatedRulesNeverCrash() throws {
        let sample = Array((Self.rule("  sel_a: {F|contains|all: [a, '*b?']}\n  sel_b: {IP|cidr: 10.0.0.0/8}\n  k: [x]\n  condition: 1 of sel_* and not k or all of them")
            + "\ndetails: '%F% %%'\nlevel: high").utf8)
        var random = SeededRandom(seed: 0x5169)
        for _ in 0..<FuzzBudget.iterations {
            let text = String(decoding: random.mutate(sample), as: UTF8.self)
            _ = try? Self.sigma(text, events: [#"{"F":"ab","IP":"10.0.0.1"}"#])
        }
    }
    // MARK: Correlation rules

    static let failedLogin = """
        title: Failed SSH login
        name: failed_ssh
        logsource: {category: process_creation, product: linux}
        detection: {s: {Message|contains: 'Failed password'}, condition: s}
        """

    static func login(_ second: Int, ip: String, user: String = "root", message: String = "Failed password") -> String {
        #"{"Timestamp":"2026-12-01T10:00:\#(String(format: "%02d", second))Z","Ip":"\#(ip)","User":"\#(user)","Message":"\#(message) for \#(user)"}"#
    }

    @Test func eventCountFiresOncePerGroupAndHidesTheBaseRule() throws {
        let rules = Self.failedLogin + """

            ---
            title: SSH brute force
            id: 0c7d2b1e-0000-4000-8000-00000000c001
            level: high
            correlation:
              type: event_count
              rules: [failed_ssh]
              group-by: [Ip]
              timespan: 1m
              condition: {gte: 5}
            """
        var events = (0..<6).map { Self.login($0, ip: "10.0.0.1") }
        events += (10..<12).map { Self.login($0, ip: "10.0.0.2") }
        let (rows, log) = try Self.sigma(rules, events: events)
        #expect(rows.count == 1, "\(log)")
        let hit = try #require(rows.first)
        #expect(hit.member("_Rule").member("Title").stringValue == "SSH brute force")
        #expect(hit.member("Ip").stringValue == "10.0.0.1")
        #expect(hit.member("Count").intValue == 5)
        #expect(hit.member("_Correlations").listElements?.count == 5)
        #expect(JSONWriter.string(hit.member("Timestamp")) == "\"2026-12-01T10:00:04Z\"")
        #expect(log.contains { $0.contains("1 rules and 1 correlations") }, "\(log)")
    }

    @Test func valueCountAndTemporalOrder() throws {
        let spray = Self.failedLogin + """

            ---
            title: Password spray
            correlation:
              type: value_count
              rules: failed_ssh
              group-by: Ip
              timespan: 5m
              condition: {gte: 3, field: User}
              generate: true
            """
        let events = [Self.login(1, ip: "10.0.0.9", user: "a"), Self.login(2, ip: "10.0.0.9", user: "a"),
                      Self.login(3, ip: "10.0.0.9", user: "b"), Self.login(4, ip: "10.0.0.9", user: "c")]
        let (rows, log) = try Self.sigma(spray, events: events)
        // generate: true keeps the four base matches; the spray fires at the third distinct user.
        #expect(rows.filter { $0.member("_Rule").member("Title").stringValue == "Failed SSH login" }.count == 4, "\(log)")
        let hit = try #require(rows.first { $0.member("_Rule").member("Title").stringValue == "Password spray" })
        #expect(hit.member("Count").intValue == 3)

        let ordered = """
            title: Login failed
            name: fail
            logsource: {category: process_creation, product: linux}
            detection: {s: {Message|contains: 'Failed password'}, condition: s}
            ---
            title: Login accepted
            name: accept
            logsource: {category: process_creation, product: linux}
            detection: {s: {Message|contains: 'Accepted password'}, condition: s}
            ---
            title: Failure then success
            correlation: {type: temporal_ordered, rules: [fail, accept], group-by: [Ip], timespan: 10s}
            """
        let (hits, _) = try Self.sigma(ordered, events: [Self.login(1, ip: "1.1.1.1"), Self.login(5, ip: "1.1.1.1", message: "Accepted password")])
        #expect(hits.count == 1 && hits.first?.member("Count").intValue == 2)
        let (reversed, _) = try Self.sigma(ordered, events: [Self.login(1, ip: "1.1.1.1", message: "Accepted password"), Self.login(5, ip: "1.1.1.1")])
        #expect(reversed.isEmpty, "success before failure is not the pattern")
        let (late, _) = try Self.sigma(ordered, events: [Self.login(1, ip: "1.1.1.1"), Self.login(30, ip: "1.1.1.1", message: "Accepted password")])
        #expect(late.isEmpty, "outside the 10 s window")
    }

    /// The window state machine alone, with made-up times: old inputs slide out, a hit restarts the group.
    @Test func correlationWindowsSlideAndRestart() throws {
        let spec = try #require(try SigmaRule.parseAll("""
            title: Burst
            correlation: {type: event_count, rules: [x], timespan: 10s, condition: {gte: 3}}
            """).first?.get())
        guard case .correlation(let correlation) = spec else { Issue.record("not a correlation"); return }
        var state = SigmaCorrelationState(correlation)
        func feed(_ time: Double) -> SigmaCorrelationHit? {
            state.feed(SigmaCorrelationInput(time: time, rule: 0, group: [], value: nil, event: .int(Int64(time))))
        }
        #expect(feed(0) == nil && feed(5) == nil)
        #expect(feed(11) == nil, "the input at 0 slid out: two in the window")
        let hit = try #require(feed(12))
        #expect(hit.count == 3 && hit.first == 5 && hit.last == 12)
        #expect(feed(13) == nil && feed(14) == nil, "after a hit the window starts afresh")
        #expect(feed(15)?.count == 3)
    }

    @Test func brokenCorrelationsAreRefusedWithAReason() throws {
        let broken: [(String, String)] = [
            ("title: a\ncorrelation: {type: event_count, rules: [x], timespan: 1m, condition: {lt: 3}}", "'lt' needs the end of a window"),
            ("title: a\ncorrelation: {type: sideways, rules: [x], timespan: 1m}", "correlation type must be"),
            ("title: a\ncorrelation: {type: temporal, rules: [x], timespan: soon}", "timespan must be"),
            ("title: a\ncorrelation: {type: value_count, rules: [x], timespan: 1m, condition: {gte: 2}}", "needs condition.field"),
        ]
        for (rule, reason) in broken {
            let (_, log) = try Self.sigma(rule, events: [Self.login(1, ip: "x")])
            #expect(log.contains { $0.contains("refused") && $0.contains(reason) }, "\(reason): \(log)")
        }
        let (_, log) = try Self.sigma("title: a\ncorrelation: {type: temporal, rules: [nobody], timespan: 1m}", events: [Self.login(1, ip: "x")])
        #expect(log.contains { $0.contains("refers to 'nobody'") }, "\(log)")
    }
}
