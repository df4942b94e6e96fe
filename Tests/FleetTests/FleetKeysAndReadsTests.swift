import Fleet
import FleetCore
import Foundation
import NIOConcurrencyHelpers
import Testing

/// API keys that can be taken back, and reads that cannot take the server's memory or stall others.
extension FleetTests {
    /// `user rotate-key` and `user rm` stop the old key at once on the frontend that made the change,
    /// and within the key cache's lifetime on another frontend; an expired key is refused; all is
    /// audited, never with the key.
    @Test func removedRotatedAndExpiredKeysStopWorking() async throws {
        let fleet = try FleetHarness(frontends: 2, limits: { $0.apiKeyCacheSeconds = 2 })
        try await fleet.startServer(0)
        try await fleet.startServer(1)
        let rita = fleet.dir + "/rita.yaml", ritaOnOther = fleet.dir + "/rita-other.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", rita]))
        var other = try ConfigFile.load(APIConfig.self, from: rita)
        other.serverURL = "https://127.0.0.1:\(fleet.ports[1])"
        try ConfigFile.save(other, to: ritaOnOther)
        try fleet.check(fleet.cli(["hunt", "list"], apiConfig: rita))
        try fleet.check(fleet.cli(["hunt", "list"], apiConfig: ritaOnOther))
        let oldKey = try ConfigFile.load(APIConfig.self, from: rita).apiKey

        // Rotation: the new key works, the old one is refused here at once, and on the other
        // frontend once its cache entry is older than 2 s.
        let rotated = fleet.dir + "/rita2.yaml"
        try fleet.check(fleet.cli(["user", "rotate-key", "rita", "--output", rotated]))
        #expect(try ConfigFile.load(APIConfig.self, from: rotated).apiKey != oldKey)
        let refused = try fleet.cli(["hunt", "list"], apiConfig: rita)
        #expect(refused.status != 0 && refused.stderr.contains("401"), "\(refused.stderr)")
        try fleet.check(fleet.cli(["hunt", "list"], apiConfig: rotated))
        try await Task.sleep(for: .seconds(2.5))
        #expect(try fleet.cli(["hunt", "list"], apiConfig: ritaOnOther).status != 0)

        // Removal: refused at once; the listing shows who is left.
        try fleet.check(fleet.cli(["user", "rm", "rita"]))
        let removed = try fleet.cli(["hunt", "list"], apiConfig: rotated)
        #expect(removed.status != 0 && removed.stderr.contains("401"))
        let list = try fleet.cli(["user", "list", "--format", "json"])
        try fleet.check(list)
        #expect(list.stdout.contains("\"admin\"") && !list.stdout.contains("rita"))
        // The last administrator cannot be removed.
        let last = try fleet.cli(["user", "rm", "admin"])
        #expect(last.status != 0 && last.stderr.contains("last administrator"))

        // Expiry: a key made to last 2 s works, then is refused.
        let brief = fleet.dir + "/brief.yaml"
        try fleet.check(fleet.cli(["user", "add", "bea", "--role", "reader", "--expires", "2s", "--output", brief]))
        try fleet.check(fleet.cli(["hunt", "list"], apiConfig: brief))
        try await Task.sleep(for: .seconds(2.5))
        let expired = try fleet.cli(["hunt", "list"], apiConfig: brief)
        #expect(expired.status != 0 && expired.stderr.contains("expired"), "\(expired.stderr)")
        #expect(try fleet.cli(["user", "add", "cy", "--role", "reader", "--expires", "soon"]).status != 0)

        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "rotate-key" && $0.target == "rita" && $0.user == "admin" })
        #expect(audit.contains { $0.action == "remove-user" && $0.target == "rita" })
        #expect(audit.contains { $0.action == "add-user" && $0.target == "bea" && $0.details.contains("expires_at") })
        let newKey = try ConfigFile.load(APIConfig.self, from: rotated).apiKey
        #expect(!audit.contains { $0.details.contains(oldKey) || $0.details.contains(newKey) })
    }

    /// The audit log reads in pages: newest first, each page below the one before, none over the maximum.
    @Test func auditLogIsPaged() async throws {
        let fleet = try FleetHarness(limits: { $0.maxAuditPageEntries = 20 })
        try await fleet.startServer()
        for index in 0..<45 {
            _ = try await fleet.post("/users", body: UserRequestBody(name: "user\(index)", role: .reader), as: IssuedKey.self)
        }
        #expect(try await fleet.get("/audit", query: ["limit": "1000"], as: [AuditEntry].self).count == 20)
        var seen: [AuditEntry] = []
        var before: Int64?
        while true {
            let page = try await fleet.get("/audit", query: ["limit": "7", "before": before.map(String.init)], as: [AuditEntry].self)
            seen += page
            guard page.count == 7, let last = page.last?.id else { break }
            before = last
        }
        #expect(seen.count == 45)
        #expect(Set(seen.compactMap(\.id)).count == 45)
        #expect(seen.map(\.target) == (0..<45).reversed().map { "user\($0)" })
        let bad = try await #require(throws: APIError.self) { try await fleet.get("/audit", query: ["before": "yesterday"], as: [AuditEntry].self) }
        #expect(bad.status == 400)
    }

    /// 200,000 rows read through the API: a page is never longer than the maximum, each streams as
    /// JSON lines (the server's memory barely moves however many rows it sends), and while four
    /// readers pull all of them at once, other analysts' calls (a read and a write) keep being
    /// answered. Before, a read built its whole answer in memory, under the datastore's one lock.
    @Test func largeResultReadsAreStreamedAndDoNotStallOthers() async throws {
        let fleet = try FleetHarness(limits: { $0.maxResultsPageRows = 200_000 })
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let flow = try fleet.cli(["collect", id, "Test.Rows", "--args", "Count=200000", "--timeout", "600"])
        try fleet.check(flow)
        let flowId = flow.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fleet.waitUntil(timeout: 300, "200,000 rows stored") {
            let view = try await fleet.get("/flows/\(flowId)", as: FlowView.self)
            return view.flow.state.isFinal && view.flow.rows == 200_000
        }
        // A page is never longer than the maximum, whatever is asked; the default is shorter.
        let api = try fleet.api()
        #expect(try await api.resultsPage(["flow_id": flowId], after: nil, rows: 1_000_000).count == 200_000)
        #expect(try await api.resultsPage(["flow_id": flowId], after: nil, rows: 7).count == 7)
        #expect(try await api.resultsPage(["flow_id": flowId], after: nil, rows: 0).count == 1)
        // Every row once, in order, read in pages.
        let rows = try await fleet.results(["flow_id": flowId])
        #expect(Set(rows.map { $0.cursor.description }).count == 200_000)
        #expect(rows.first?.json.contains("\"N\":0") == true && rows.last?.json.contains("\"N\":199999") == true)

        // Four readers take all 200,000 rows in one response each (raw HTTP: the test process only
        // counts lines, so the load is the server's), while another analyst's calls are timed.
        let key = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig).apiKey
        let tls = try Self.anonymousTLS(fleet)
        let before = fleet.serverRSS()
        let sampler = RSSSampler(fleet)
        let latencies = NIOLockedValueBox<[Double]>([])
        let started = Date()
        let finished = NIOLockedValueBox(false)
        let readers = Task {
            defer { finished.withLockedValue { $0 = true } }
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let peer = try await RawPeer.connect(port: fleet.port, tls: tls.context)
                        try await peer.send("GET /api/v1/results?flow_id=\(flowId)&limit=200000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nConnection: close\r\n\r\n")
                        _ = await peer.waitClosed(within: 600)
                        return peer.totals.jsonLines
                    }
                }
                var counts: [Int] = []
                for try await count in group { counts.append(count) }
                return counts
            }
        }
        var round = 0
        while true {
            let t0 = Date()
            _ = try await api.get("/clients", as: [ClientView].self)
            _ = try await api.post("/clients/\(id)/labels", body: LabelRequest(add: ["round\(round)"], remove: []), as: [String].self)
            latencies.withLockedValue { $0.append(Date().timeIntervalSince(t0)) }
            round += 1
            if round >= 5, finished.withLockedValue({ $0 }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let counts = try await readers.value
        let readTime = Date().timeIntervalSince(started)
        let peak = sampler.stop()
        let during = latencies.withLockedValue { $0 }
        print("4 readers × 200,000 rows (one streamed response each) in \(String(format: "%.2f", readTime)) s; server RSS \(before / 1024) MiB before, peak \(peak / 1024) MiB; meanwhile \(during.count) rounds of GET clients + POST labels, median \(String(format: "%.3f", during.sorted()[during.count / 2])) s, slowest \(String(format: "%.3f", during.max() ?? 0)) s")
        #expect(counts == [200_000, 200_000, 200_000, 200_000])
        #expect(peak - before < 64 << 10, "server RSS went from \(before) KiB to \(peak) KiB")
        #expect(during.count >= 5)
        #expect((during.max() ?? 0) < readTime / 2, "another analyst waited \(during.max() ?? 0) s while the reads took \(readTime) s")
    }
}
