import Fleet
import FleetCore
import Foundation
import Testing

/// Server VQL (`quarry query --server`) with Velociraptor's names, against a real server, store
/// and agent: what each name returns, and that the server refuses what a role may not do.
@Suite(.serialized, .enabled(if: FleetHarness.available, "run `swift build` first"))
struct FleetServerVQLTests {
    /// The rows of a server query (JSON lines) and its standard error.
    static func vql(_ fleet: FleetHarness, _ text: String, apiConfig: String? = nil, env: [String] = []) throws -> (rows: [[String: Any]], stderr: String, status: Int32) {
        let output = try fleet.cli(["query", "--server", "--format", "jsonl"] + env.flatMap { ["--env", $0] } + [text], apiConfig: apiConfig)
        let rows = output.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        return (rows, output.stderr, output.status)
    }

    /// The single value of a one-row, one-column query.
    static func one(_ fleet: FleetHarness, _ text: String, apiConfig: String? = nil, env: [String] = []) throws -> Any? {
        let result = try vql(fleet, text, apiConfig: apiConfig, env: env)
        guard result.status == 0 else { throw HarnessError("query failed: \(result.stderr)") }
        return result.rows.first?.values.first
    }

    /// server_frontend_cert, artifact_delete, client_create and send_event.
    @Test func certificateArtifactDeletionClientCreationAndSentEvents() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        let certificate = try ConfigFile.load(ServerConfig.self, from: fleet.serverConfig).server.certificate
        #expect(try Self.one(fleet, "SELECT server_frontend_cert() AS C FROM scope()") as? String == certificate)

        let definition = "name: Custom.Gone\\nsources:\\n  - query: SELECT 1 AS One FROM scope()\\n"
        #expect(try Self.one(fleet, "SELECT artifact_set(definition='\(definition)').name AS N FROM scope()") as? String == "Custom.Gone")
        #expect(try Self.one(fleet, "SELECT artifact_delete(name='Custom.Gone') AS D FROM scope()") as? String == "Custom.Gone")
        #expect(try Self.vql(fleet, "SELECT name FROM artifact_definitions(names='Custom.Gone')").rows.isEmpty)
        let builtin = try Self.vql(fleet, "SELECT artifact_delete(name='Linux.Sys.Pslist') AS D FROM scope()")
        #expect(builtin.rows.first?["D"] is NSNull && builtin.stderr.contains("only custom artifacts"), "\(builtin.stderr)")
        #expect(try Self.vql(fleet, "SELECT name FROM artifact_definitions(names='Linux.Sys.Pslist')").rows.count == 1)

        let created = try #require(try Self.one(fleet, "SELECT client_create(hostname='evidence-box', labels=['offline', 'case-7']) AS Id FROM scope()") as? String)
        #expect(created.hasPrefix("C."))
        let listed = try Self.vql(fleet, "SELECT client_id, os_info.hostname AS H, labels FROM clients() WHERE client_id = '\(created)'")
        #expect(listed.rows.first?["H"] as? String == "evidence-box", "\(listed)")
        #expect(Set(listed.rows.first?["labels"] as? [String] ?? []) == ["offline", "case-7"])
        let again = try Self.vql(fleet, "SELECT client_create(client_id='\(created)') AS Id FROM scope()")
        #expect(again.rows.first?["Id"] is NSNull && again.stderr.contains("exists"))

        // client_delete: a dry run lists, then everything about the client goes.
        let dry = try Self.vql(fleet, "SELECT type, vfs_path, really_do_it FROM client_delete(client_id='\(created)')")
        #expect(dry.rows.count == 1 && dry.rows.first?["type"] as? String == "client" && dry.rows.first?["really_do_it"] as? Bool == false, "\(dry)")
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients() WHERE client_id = '\(created)'").rows.count == 1)
        let deleted = try Self.vql(fleet, "SELECT type, count, really_do_it FROM client_delete(client_id='\(created)', really_do_it=TRUE)")
        #expect(deleted.rows.map { $0["type"] as? String } == ["events", "notes", "client"], "\(deleted)")
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients() WHERE client_id = '\(created)'").rows.isEmpty)
        let audit = try await fleet.get("/audit", as: [AuditEntry].self)
        #expect(audit.contains { $0.action == "delete-client" && $0.target == created })
        #expect(try Self.vql(fleet, "SELECT * FROM client_delete(client_id='\(created)')").status != 0)

        // user_grant: a reader becomes an investigator; its key works with the new role at once.
        let created2 = try Self.vql(fleet, "SELECT user_create(user='rita', roles='reader') AS U FROM scope()")
        let ritaKey = try #require((created2.rows.first?["U"] as? [String: Any])?["api_key"] as? String, "\(created2)")
        var ritaConfig = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig)
        ritaConfig.user = "rita"
        ritaConfig.apiKey = ritaKey
        let ritaPath = fleet.dir + "/rita.yaml"
        try ConfigFile.save(ritaConfig, to: ritaPath)
        let asReader = try Self.vql(fleet, "SELECT label(client_id='C.0000000000000001', labels='x', op='set') AS L FROM scope()", apiConfig: ritaPath)
        #expect(asReader.stderr.contains("LABEL_CLIENT"), "\(asReader.stderr)")
        #expect((try Self.one(fleet, "SELECT user_grant(user='rita', roles='investigator') AS U FROM scope()") as? [String: Any])?["role"] as? String == "investigator")
        let asInvestigator = try Self.vql(fleet, "SELECT label(client_id='C.0000000000000001', labels='x', op='set') AS L FROM scope()", apiConfig: ritaPath)
        #expect(!asInvestigator.stderr.contains("LABEL_CLIENT"), "\(asInvestigator.stderr)")
        let lastAdmin = try Self.vql(fleet, "SELECT user_grant(user='admin', roles='reader') AS U FROM scope()")
        #expect(lastAdmin.rows.first?["U"] is NSNull && lastAdmin.stderr.contains("last administrator"), "\(lastAdmin.stderr)")

        #expect(try Self.one(fleet, "SELECT send_event(artifact='Custom.Events', row=dict(Message='hello', N=2)) AS Sent FROM scope()") as? Bool == true)
        let events = try Self.vql(fleet, "SELECT Message, N FROM monitoring(artifact='Custom.Events', client_id='server')")
        #expect(events.rows.count == 1 && events.rows.first?["Message"] as? String == "hello", "\(events)")
        let refused = try Self.vql(fleet, "SELECT send_event(artifact='Custom.Events', row='not a dict') AS Sent FROM scope()")
        #expect(refused.rows.first?["Sent"] is NSNull)
    }

    @Test func clientsFlowsHuntsAndServerNamesWorkForAnAdministrator() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))

        // clients(): Velociraptor's fields and search syntax.
        let all = try Self.vql(fleet, "SELECT client_id, os_info.system AS System, last_seen_at FROM clients(search='all')")
        #expect(all.rows.count == 1 && all.rows.first?["client_id"] as? String == id && !((all.rows.first?["System"] as? String) ?? "").isEmpty)
        #expect(((all.rows.first?["last_seen_at"] as? Int) ?? 0) > 1_000_000_000_000_000)
        #expect(try Self.one(fleet, "SELECT label(client_id='\(id)', labels=['web', 'triage']) AS L FROM scope()") as? String == id)
        #expect(try Self.one(fleet, "SELECT label(client_id='\(id)', labels='web', op='check') AS L FROM scope()") as? String == id)
        #expect(try Self.one(fleet, "SELECT label(client_id='\(id)', labels='triage', op='remove') AS L FROM scope()") as? String == id)
        #expect(try Self.one(fleet, "SELECT label(client_id='\(id)', labels='triage', op='check') AS L FROM scope()") as? Bool == false)
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients(search='label:we*')").rows.count == 1)
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients(search='label:nope')").rows.isEmpty)
        #expect(try Self.one(fleet, "SELECT client_info(client_id='\(id)').labels AS L FROM scope()") as? [String] == ["web"])

        // Metadata notes of the client, of the server, and a user's options.
        #expect(try Self.one(fleet, "SELECT client_set_metadata(client_id='\(id)', owner='ops', metadata=dict(room='12')).owner AS O FROM scope()") as? String == "ops")
        #expect(try Self.one(fleet, "SELECT client_metadata(client_id='\(id)').room AS R FROM scope()") as? String == "12")
        _ = try Self.one(fleet, "SELECT client_set_metadata(client_id='\(id)', room=NULL) FROM scope()")
        #expect(try Self.one(fleet, "SELECT client_metadata(client_id='\(id)') AS M FROM scope()") as? [String: String] == ["owner": "ops"])
        #expect(try Self.one(fleet, "SELECT server_set_metadata(contact='soc@example.com').contact AS C FROM scope()") as? String == "soc@example.com")
        #expect(try Self.one(fleet, "SELECT server_metadata().contact AS C FROM scope()") as? String == "soc@example.com")
        #expect(try Self.one(fleet, "SELECT whoami() AS Me FROM scope()") as? String == "admin")
        #expect(try Self.one(fleet, "SELECT user_options(user=whoami(), timezone='UTC').timezone AS Z FROM scope()") as? String == "UTC")
        #expect(try Self.one(fleet, "SELECT user(user='admin').roles AS R FROM scope()") as? [String] == ["administrator"])
        #expect(try Self.vql(fleet, "SELECT name FROM gui_users()").rows.compactMap { $0["name"] as? String } == ["admin"])
        let inventory = try Self.vql(fleet, "SELECT * FROM inventory()")
        #expect(inventory.status == 0 && inventory.rows.isEmpty)

        // collect_client (the function), get_flow, flows, flow_results, source, enumerate_flow.
        let flowId = try #require(try Self.one(fleet, "SELECT collect_client(client_id='\(id)', artifacts='Test.Rows', env=dict(Count='5')).flow_id AS F FROM scope()") as? String)
        #expect(flowId.hasPrefix("F."))
        try await fleet.waitUntil(timeout: 30, "the flow finished") {
            try Self.one(fleet, "SELECT get_flow(client_id='\(id)', flow_id='\(flowId)').state AS S FROM scope()") as? String == "FINISHED"
        }
        #expect(try Self.one(fleet, "SELECT get_flow(client_id='\(id)', flow_id='\(flowId)').artifacts_with_results AS A FROM scope()") as? [String] == ["Test.Rows"])
        let flows = try Self.vql(fleet, "SELECT session_id, total_collected_rows FROM flows(client_id='\(id)')").rows
        #expect(flows.contains { $0["session_id"] as? String == flowId && $0["total_collected_rows"] as? Int == 5 })
        let rows = try Self.vql(fleet, "SELECT N, Text FROM flow_results(client_id='\(id)', flow_id='\(flowId)', artifact='Test.Rows')").rows
        #expect(rows.compactMap { $0["N"] as? Int } == [0, 1, 2, 3, 4])
        #expect(try Self.vql(fleet, "SELECT * FROM source(client_id='\(id)', flow_id='\(flowId)', artifact='Test.Rows', start_row=3)").rows.count == 2)
        let entries = try Self.vql(fleet, "SELECT Type, VFSPath, Size FROM enumerate_flow(client_id='\(id)', flow_id='\(flowId)')").rows
        #expect(entries.contains { $0["Type"] as? String == "Result" && $0["Size"] as? Int == 5 && ($0["VFSPath"] as? String)?.hasSuffix("/results/Test.Rows.json") == true })
        #expect(try Self.vql(fleet, "SELECT * FROM flow_logs(client_id='\(id)', flow_id='\(flowId)')").status == 0)
        // A flow asked for under another client is refused, not shown.
        let wrong = try Self.vql(fleet, "SELECT * FROM flow_logs(client_id='C.0000000000000000', flow_id='\(flowId)')")
        #expect(wrong.status != 0 && wrong.stderr.contains("not a flow of client"))
        #expect(try Self.vql(fleet, "SELECT * FROM flow_results(client_id='C.0000000000000000', flow_id='\(flowId)')").rows.isEmpty)

        // hunt (the function), hunts, hunt_info, hunt_flows, hunt_results, hunt_update, hunt_add, hunt_delete.
        let huntId = try #require(try Self.one(fleet, "SELECT hunt(artifacts='Test.Rows', env=dict(Count='3'), include_labels='web', description='three').hunt_id AS H FROM scope()") as? String)
        try await fleet.waitUntil(timeout: 30, "the hunt finished on the client") {
            (try Self.one(fleet, "SELECT hunt_info(hunt_id='\(huntId)').stats.total_clients_finished AS N FROM scope()") as? Int) == 1
        }
        let huntRow = try #require(try Self.vql(fleet, "SELECT hunt_id, hunt_description, state, artifacts FROM hunts()").rows.first { $0["hunt_id"] as? String == huntId })
        #expect(huntRow["state"] as? String != nil && huntRow["hunt_description"] as? String == "three" && huntRow["artifacts"] as? [String] == ["Test.Rows"])
        let huntFlows = try Self.vql(fleet, "SELECT ClientId, FlowId, Flow.state AS State FROM hunt_flows(hunt_id='\(huntId)')").rows
        #expect(huntFlows.count == 1 && huntFlows.first?["ClientId"] as? String == id && huntFlows.first?["State"] as? String == "FINISHED")
        #expect(try Self.vql(fleet, "SELECT ClientId, N FROM hunt_results(hunt_id='\(huntId)', artifact='Test.Rows')").rows.count == 3)
        #expect(try Self.vql(fleet, "SELECT * FROM source(hunt_id='\(huntId)', artifact='Test.Rows')").rows.allSatisfy { $0["ClientId"] as? String == id })
        #expect(try Self.one(fleet, "SELECT hunt_update(hunt_id='\(huntId)', description='renamed', stop=TRUE).state AS S FROM scope()") as? String == "STOPPED")
        #expect(try Self.one(fleet, "SELECT hunt_info(hunt_id='\(huntId)').hunt_description AS D FROM scope()") as? String == "renamed")
        // hunt_add gives the client its flow of the round (already there: the same flow).
        #expect(try Self.one(fleet, "SELECT hunt_add(client_id='\(id)', hunt_id='\(huntId)').flow_id AS F FROM scope()") as? String == huntFlows.first?["FlowId"] as? String)
        let dry = try Self.vql(fleet, "SELECT * FROM hunt_delete(hunt_id='\(huntId)')").rows
        #expect(dry.count == 1 && dry.first?["Deleted"] as? Bool == false)
        #expect(try await fleet.results(["hunt_id": huntId]).count == 3)
        let deleted = try Self.vql(fleet, "SELECT * FROM hunt_delete(hunt_id='\(huntId)', really_do_it=TRUE)").rows
        #expect(deleted.count == 1 && deleted.first?["Deleted"] as? Bool == true)
        #expect(try await fleet.results(["hunt_id": huntId]).isEmpty)
        #expect(try Self.vql(fleet, "SELECT hunt_id FROM hunts()").rows.allSatisfy { $0["hunt_id"] as? String != huntId })

        // A custom artifact set on the server runs on the agent; a built-in name cannot be replaced.
        let hello = "Definition=name: Custom.Hello\nsources:\n  - query: SELECT 41 + 1 AS Answer FROM scope()\n"
        #expect(try Self.one(fleet, "SELECT artifact_set(definition=Definition).name AS N FROM scope()", env: [hello]) as? String == "Custom.Hello")
        let custom = try Self.vql(fleet, "SELECT name, built_in FROM artifact_definitions(names='Custom.Hello')").rows
        #expect(custom.count == 1 && custom.first?["built_in"] as? Bool == false)
        #expect(try Self.vql(fleet, "SELECT name FROM artifact_definitions(names='Linux.Sys.Pslist')").rows.count == 1)
        let clash = try Self.vql(
            fleet, "SELECT artifact_set(definition=Definition) AS A FROM scope()", env: ["Definition=name: Linux.Sys.Pslist\nsources:\n  - query: SELECT 1 FROM scope()\n"])
        #expect(clash.rows.first?["A"] is NSNull && clash.stderr.contains("needs its own name"))
        let helloFlow = try #require(try Self.one(fleet, "SELECT collect_client(client_id='\(id)', artifacts='Custom.Hello').flow_id AS F FROM scope()") as? String)
        try await fleet.waitUntil(timeout: 30, "the custom artifact ran") {
            try Self.vql(fleet, "SELECT Answer FROM flow_results(client_id='\(id)', flow_id='\(helloFlow)')").rows.first?["Answer"] as? Int == 42
        }
        // delete_flow: a dry run keeps it, really_do_it removes it.
        #expect(try Self.vql(fleet, "SELECT Deleted FROM delete_flow(client_id='\(id)', flow_id='\(helloFlow)')").rows.first?["Deleted"] as? Bool == false)
        #expect(try Self.vql(fleet, "SELECT Deleted FROM delete_flow(client_id='\(id)', flow_id='\(helloFlow)', really_do_it=TRUE)").rows.first?["Deleted"] as? Bool == true)
        let gone = try Self.vql(fleet, "SELECT get_flow(client_id='\(id)', flow_id='\(helloFlow)') AS F FROM scope()")
        #expect(gone.rows.first?["F"] is NSNull && gone.stderr.contains("404"))
        // A server artifact (type SERVER) that calls only server names verifies and runs with --server.
        let serverArtifacts = fleet.dir + "/server-artifacts"
        try FileManager.default.createDirectory(atPath: serverArtifacts, withIntermediateDirectories: true)
        try Self.serverArtifact.write(toFile: serverArtifacts + "/overview.yaml", atomically: true, encoding: .utf8)
        let verify = try fleet.run(["artifacts", "verify", serverArtifacts])
        #expect(verify.status == 0 && verify.stdout.contains("Server.Test.Overview: loaded\n"), "\(verify.stdout)")
        let overview = try fleet.cli(["query", "--server", "--format", "jsonl", "--definitions", serverArtifacts, "SELECT * FROM Artifact.Server.Test.Overview()"])
        try fleet.check(overview)
        let line = try #require(overview.stdout.split(separator: "\n").first.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(line["client_id"] as? String == id && ((line["Flows"] as? Int) ?? 0) >= 2, "\(line)")
        // Every change went to the audit log under the analyst's name.
        let audit = try await fleet.get("/audit", query: ["limit": "200"], as: [AuditEntry].self)
        for action in ["set-client-metadata", "set-server-metadata", "delete-hunt", "delete-flow", "set-artifact", "update-hunt", "set-user-options"] {
            #expect(audit.contains { $0.action == action && $0.user == "admin" }, "no audit entry \(action)")
        }
    }

    /// A Velociraptor-style server artifact: clients with a label, and how many flows each has.
    static let serverArtifact = """
        name: Server.Test.Overview
        type: SERVER
        parameters:
          - name: Label
            default: web
        sources:
          - query: |
              LET Hosts = SELECT client_id, os_info.hostname AS Hostname FROM clients(search='label:' + Label)
              SELECT client_id, Hostname, len(list={ SELECT session_id FROM flows(client_id=client_id) }) AS Flows,
                     client_metadata(client_id=client_id) AS Notes
              FROM Hosts
        """

    /// Whole monitoring tables, a password, an import, the one organisation and console links.
    @Test func tablesPasswordsImportsOrgsAndLinks() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        _ = try Self.one(fleet, "SELECT add_client_monitoring(artifact='Linux.Events.SSHLogin') AS T FROM scope()")
        let replaced = try #require(try Self.one(fleet, """
            SELECT set_client_monitoring(value=dict(specs=[dict(artifact='Linux.Events.ProcessExecutions',
                parameters=dict(env=[dict(key='ExeRegex', value='^/tmp/')]))])) AS T FROM scope()
            """) as? [String: Any])
        #expect(replaced["artifacts"] as? [String] == ["Linux.Events.ProcessExecutions"], "\(replaced)")
        let table = try await fleet.get("/monitoring", as: [MonitoringEntry].self)
        #expect(table.map(\.artifact) == ["Linux.Events.ProcessExecutions"] && table.first?.parameters == ["ExeRegex": "^/tmp/"])
        // Round trip: what get_ returns, set_ takes back unchanged.
        _ = try Self.one(fleet, "SELECT set_client_monitoring(value=get_client_monitoring()) AS T FROM scope()")
        #expect(try await fleet.get("/monitoring", as: [MonitoringEntry].self).map(\.parameters) == [["ExeRegex": "^/tmp/"]])
        _ = try Self.one(fleet, "SELECT set_server_monitoring(value=dict(artifacts=['Server.Detection.ExecFromTmp'])) AS T FROM scope()")
        #expect(try await fleet.get("/server-monitoring", as: [MonitoringEntry].self).map(\.artifact) == ["Server.Detection.ExecFromTmp"])
        _ = try Self.one(fleet, "SELECT set_server_monitoring(value=dict(artifacts=[])) AS T FROM scope()")
        #expect(try await fleet.get("/server-monitoring", as: [MonitoringEntry].self).isEmpty)

        #expect(try Self.one(fleet, "SELECT passwd(password='a long passphrase 42').password AS P FROM scope()") as? String == "set")
        let short = try Self.vql(fleet, "SELECT passwd(password='short') AS P FROM scope()")
        #expect(short.stderr.contains("at least 8 characters"))

        let container = fleet.dir + "/users.zip"
        try fleet.check(fleet.run(["artifacts", "collect", "Linux.Sys.Users", "--output", container]))
        let imported = try #require(try Self.one(fleet, "SELECT import_collection(filename='\(container)', hostname='imported-host') AS F FROM scope()") as? [String: Any])
        #expect((imported["flow_id"] as? String)?.hasPrefix("F.") == true && imported["created_client"] as? Bool == true, "\(imported)")
        #expect(imported["artifacts_with_results"] as? [String] == ["Linux.Sys.Users"])
        let client = try #require(imported["client_id"] as? String)
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients(search='host:imported-host')").rows.first?["client_id"] as? String == client)

        #expect(try Self.one(fleet, "SELECT org().id AS O FROM scope()") as? String == "root")
        #expect(try Self.vql(fleet, "SELECT id FROM orgs()").rows.count == 1)
        let url = try ConfigFile.load(APIConfig.self, from: fleet.apiConfig).serverURL
        #expect(try Self.one(fleet, "SELECT link_to(client_id='\(client)', raw=TRUE) AS L FROM scope()") as? String == url + "/clients/" + client)
        #expect(try Self.one(fleet, "SELECT link_to(hunt_id='H.1234') AS L FROM scope()") as? String == "[H.1234](\(url)/hunts/H.1234)")
        #expect(try Self.one(fleet, "SELECT link_to(client_id='\(client)', flow_id='F.1', text='the collection') AS L FROM scope()") as? String
            == "[the collection](\(url)/clients/\(client))")
    }

    @Test func rolesBoundWhatServerVQLMayDo() async throws {
        let fleet = try FleetHarness()
        try await fleet.startServer()
        try fleet.startAgent("a")
        try await fleet.waitForAgents(["a"])
        let id = try #require(fleet.clientId("a"))
        let reader = fleet.dir + "/reader.yaml", investigator = fleet.dir + "/investigator.yaml"
        try fleet.check(fleet.cli(["user", "add", "rita", "--role", "reader", "--output", reader]))
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--output", investigator]))
        let flowId = try #require(try Self.one(fleet, "SELECT collect_client(client_id='\(id)', artifacts='Test.Rows', env=dict(Count='2')).flow_id AS F FROM scope()") as? String)
        let huntId = try #require(try Self.one(fleet, "SELECT hunt(artifacts='Test.Rows', pause=TRUE).hunt_id AS H FROM scope()") as? String)

        let custom = "Definition=name: Custom.X\nsources:\n  - query: SELECT 1 FROM scope()\n"
        // A reader reads…
        #expect(try Self.vql(fleet, "SELECT client_id FROM clients()", apiConfig: reader).rows.count == 1)
        #expect(try Self.one(fleet, "SELECT whoami() AS Me FROM scope()", apiConfig: reader) as? String == "rita")
        let readable = try Self.vql(fleet, "SELECT session_id FROM flows(client_id='\(id)')", apiConfig: reader)
        #expect(readable.rows.contains { $0["session_id"] as? String == flowId }, "\(readable)")
        // …but cannot collect, label, annotate, hunt, cancel, delete, write artifacts or read server notes.
        let refusals: [(String, String)] = [
            ("SELECT collect_client(client_id='\(id)', artifacts='Test.Rows') AS R FROM scope()", "COLLECT_CLIENT"),
            ("SELECT label(client_id='\(id)', labels='x') AS R FROM scope()", "LABEL_CLIENT"),
            ("SELECT client_set_metadata(client_id='\(id)', owner='me') AS R FROM scope()", "COLLECT_CLIENT"),
            ("SELECT hunt(artifacts='Test.Rows') AS R FROM scope()", "START_HUNT"),
            ("SELECT hunt_add(client_id='\(id)', hunt_id='\(huntId)') AS R FROM scope()", "START_HUNT"),
            ("SELECT hunt_update(hunt_id='\(huntId)', start=TRUE) AS R FROM scope()", "START_HUNT"),
            ("SELECT cancel_flow(client_id='\(id)', flow_id='\(flowId)') AS R FROM scope()", "COLLECT_CLIENT"),
            ("SELECT artifact_set(definition=Definition) AS R FROM scope()", "ARTIFACT_WRITER"),
            ("SELECT server_metadata() AS R FROM scope()", "SERVER_ADMIN"),
            ("SELECT user(user='admin') AS R FROM scope()", "SERVER_ADMIN"),
        ]
        for (query, permission) in refusals {
            let result = try Self.vql(fleet, query, apiConfig: reader, env: [custom])
            #expect(result.rows.first?["R"] is NSNull, "\(query)")
            #expect(result.stderr.contains("403") && result.stderr.contains(permission), "\(query): \(result.stderr)")
        }
        for query in ["SELECT * FROM hunt_delete(hunt_id='\(huntId)', really_do_it=TRUE)", "SELECT * FROM delete_flow(client_id='\(id)', flow_id='\(flowId)', really_do_it=TRUE)", "SELECT * FROM gui_users()"] {
            let result = try Self.vql(fleet, query, apiConfig: reader)
            #expect(result.status != 0 && result.stderr.contains("SERVER_ADMIN"), "\(query): \(result.stderr)")
        }
        // An investigator collects and labels, but deletes nothing and writes no artifacts.
        #expect(try Self.one(fleet, "SELECT label(client_id='\(id)', labels='x') AS R FROM scope()", apiConfig: investigator) as? String == id)
        #expect(try Self.one(fleet, "SELECT hunt_add(client_id='\(id)', hunt_id='\(huntId)').client_id AS R FROM scope()", apiConfig: investigator) as? String == id)
        let delete = try Self.vql(fleet, "SELECT * FROM hunt_delete(hunt_id='\(huntId)', really_do_it=TRUE)", apiConfig: investigator)
        #expect(delete.status != 0 && delete.stderr.contains("SERVER_ADMIN"))
        let write = try Self.vql(fleet, "SELECT artifact_set(definition=Definition) AS R FROM scope()", apiConfig: investigator, env: [custom])
        #expect(write.stderr.contains("ARTIFACT_WRITER"))
        // Nothing the refused calls asked for happened.
        #expect(try await fleet.get("/hunts", as: [HuntRecord].self).map(\.huntId) == [huntId])
        #expect(try await fleet.get("/flows/\(flowId)", as: FlowView.self).flow.flowId == flowId)
        #expect(try await fleet.get("/artifacts/definitions", as: [ArtifactDefinitionView].self).allSatisfy { $0.name != "Custom.X" })
        #expect(try await fleet.get("/clients/\(id)/metadata", as: [String: String].self).isEmpty)
        // Only an administrator adds and removes analysts; the new key works at once.
        let refusedUser = try Self.vql(fleet, "SELECT user_create(user='eve', roles='administrator') AS R FROM scope()", apiConfig: investigator)
        #expect(refusedUser.rows.first?["R"] is NSNull && refusedUser.stderr.contains("SERVER_ADMIN"))
        let created = try #require(try Self.one(fleet, "SELECT user_create(user='tom', roles='reader') AS U FROM scope()") as? [String: Any])
        #expect(created["roles"] as? [String] == ["reader"] && ((created["api_key"] as? String) ?? "").count > 20)
        #expect(try Self.one(fleet, "SELECT user_delete(user='tom') AS R FROM scope()") is NSNull)
        #expect(try await fleet.get("/users", as: [UserView].self).contains { $0.name == "tom" })
        #expect(try Self.one(fleet, "SELECT user_delete(user='tom', really_do_it=TRUE) AS R FROM scope()") as? String == "tom")
        #expect(try await !fleet.get("/users", as: [UserView].self).contains { $0.name == "tom" })
        // Analysts read their own record and options, not other people's.
        #expect(try Self.one(fleet, "SELECT user(user='rita').role AS R FROM scope()", apiConfig: reader) as? String == "reader")
    }
}
