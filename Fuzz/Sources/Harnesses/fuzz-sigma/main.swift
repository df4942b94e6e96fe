import FuzzDriver
import FuzzQuery
import VQL

// sigma() over arbitrary rule text: the YAML documents, detection searches, modifiers (re, cidr,
// base64offset, windash…), the condition grammar and correlation rules, matched against a few
// fixed events so that compiled searches run too. Refusals are logged; only a crash counts.
let harness = QueryHarness("""
    SELECT * FROM sigma(rules=Data, default_details='%Cmd%',
        log_sources=sigma_log_sources(
            `*/*/*`={ SELECT * FROM Events },
            `process_creation/linux/*`={ SELECT * FROM Events }))
    """, variables: [
        "Events": .list([
            .dict(Dict([("Cmd", .string("curl http://x | sh")), ("User", .string("root")), ("Ip", .string("10.1.2.3")), ("Count", .int(7))])),
            .dict(Dict([("Cmd", .string("cmd.exe /c whoami")), ("User", .null), ("Ip", .string("::1")), ("Count", .double(2.5))])),
        ]),
    ])

runFuzzer(samples: {
    [
        """
        title: Curl to shell
        logsource: {category: process_creation, product: linux}
        detection:
          sel: {Cmd|contains|all: [curl, sh], Ip|cidr: 10.0.0.0/8}
          other: {Count|gte: 5, User: [root, admin]}
          condition: sel and not 1 of other* or all of them
        """,
        """
        title: B64
        logsource: {product: linux}
        detection:
          k: {Cmd|base64offset|contains: whoami, Cmd|windash|re|i: '^cmd'}
          condition: k
        ---
        title: Many
        correlation:
          type: event_count
          rules: [B64]
          group-by: [User]
          timespan: 1m
          condition: {gte: 2}
        """,
    ].map { Array($0.utf8) }
}) { bytes in
    harness.run(bytes)
}
