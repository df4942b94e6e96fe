import Fleet
import FleetCore
import Foundation
import Testing

/// The console's collect page against a real server and agent: the artifact picker, the typed
/// parameter form, the server's refusal of ill-typed values (in the form and through the API), a
/// collection started from the form that runs on the agent with the values given, and roles.
extension FleetTests {
    @Test func consoleCollectFormIsTypedCheckedAndRuns() async throws {
        let (fleet, id) = try await Self.consoleFleet(labels: [])
        try fleet.check(fleet.cli(["user", "add", "ivan", "--role", "investigator", "--password", "--output", fleet.dir + "/ivan.yaml"], input: Self.password + "\n"))
        let ivan = try ConsoleClient(fleet: fleet, name: "ivan")
        #expect(try ivan.signIn("ivan", Self.password).status == 303)
        let client = try ivan.get("/clients/\(id)")
        #expect(client.body.contains("data-testid=\"collect-link\""))
        let csrf = try #require(client.field("csrf"))

        // The picker finds artifacts by name and by words of their description.
        let search = try ivan.get("/clients/\(id)/collect?q=declared+types")
        #expect(search.status == 200 && search.body.contains("data-artifact=\"Test.Typed\"") && !search.body.contains("data-artifact=\"Test.Rows\""), "\(search.body)")
        // The form: one control per parameter, by type.
        let form = try ivan.get("/clients/\(id)/collect?artifact=Test.Typed")
        #expect(form.status == 200 && form.body.contains("data-testid=\"collect-form\""))
        for (name, type) in [("Mode", "choices"), ("Deep", "bool"), ("Pattern", "regex"), ("Ratio", "float")] {
            #expect(form.body.contains("data-param=\"\(name)\" data-type=\"\(type)\""), "\(name)")
        }
        #expect(form.body.contains("<option value=\"fast\" selected>fast</option><option value=\"thorough\">thorough</option>"))
        #expect(form.body.contains("type=\"number\" step=\"any\" value=\"0.5\""))

        // Ill-typed values come back with the problems beside their fields; nothing starts.
        let flowsBefore = try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self).count
        let refused = try ivan.post("/clients/\(id)/collect", [
            ("csrf", csrf), ("artifact", "Test.Typed"), ("p.Mode", "slow"), ("p.Deep", "perhaps"), ("p.Pattern", "(["), ("p.Ratio", "half"),
            ("timeout", "-5"),
        ])
        #expect(refused.status == 400)
        for problem in ["Mode: &#39;slow&#39; is not one of fast, thorough", "Deep: &#39;perhaps&#39; is not a yes/no value", "Pattern: the regular expression does not compile",
                        "Ratio: &#39;half&#39; is not a number", "timeout: &#39;-5&#39;"] {
            #expect(refused.body.contains(problem), "\(problem)")
        }
        #expect(refused.body.contains("value=\"([\"") && refused.body.contains("data-testid=\"param-error\""))
        #expect(try await fleet.get("/flows", query: ["client_id": id], as: [FlowRecord].self).count == flowsBefore)

        // A good form starts the collection with only the values that differ from the defaults.
        let started = try ivan.post("/clients/\(id)/collect", [
            ("csrf", csrf), ("artifact", "Test.Typed"), ("p.Mode", "thorough"), ("p.Deep", "Y"), ("p.Pattern", "^a+$"), ("p.Ratio", "0.5"), ("timeout", "60"),
        ])
        #expect(started.status == 303)
        let location = try #require(started.header("Location"))
        #expect(location.hasPrefix("/clients/\(id)?flow=F."))
        let flowId = String(location.split(separator: "=").last ?? "")
        let flow = try await fleet.get("/flows/\(flowId)", as: FlowView.self).flow
        #expect(flow.request.parameters == ["Mode": "thorough", "Deep": "Y", "Pattern": "^a+$"] && flow.request.timeout == 60 && flow.creator == "ivan")
        try await fleet.waitUntil(timeout: 60, "the collection from the form finishes") { try await fleet.get("/flows/\(flowId)", as: FlowView.self).flow.state.isFinal }
        let rows = try await fleet.results(["flow_id": flowId])
        let row = try #require(rows.first.flatMap { try JSONSerialization.jsonObject(with: Data($0.json.utf8)) as? [String: Any] })
        #expect(row["Mode"] as? String == "thorough" && row["Deep"] as? Bool == true && row["Pattern"] as? String == "^a+$" && row["Ratio"] as? Double == 0.5, "\(row)")

        // The same checks guard the API and the CLI, for collections and hunts.
        for (parameters, expected) in [(["Count": "many"], "Count: 'many' is not a whole number"), (["Cuont": "3"], "did you mean 'Count'?")] {
            let answer = try fleet.cli(["collect", id, "Test.Rows"] + parameters.flatMap { ["--args", "\($0.key)=\($0.value)"] })
            #expect(answer.status != 0 && answer.stderr.contains(expected), "\(answer.stderr)")
        }
        let hunt = try fleet.cli(["hunt", "create", "Test.Typed", "--args", "Mode=slow"])
        #expect(hunt.status != 0 && hunt.stderr.contains("is not one of fast, thorough"), "\(hunt.stderr)")

        // A new hunt from the console: the same typed form, with conditions and limits.
        let hunts = try ivan.get("/hunts")
        #expect(hunts.body.contains("data-testid=\"new-hunt-link\""))
        let huntForm = try ivan.get("/hunts/new?artifact=Test.Typed")
        #expect(huntForm.status == 200 && huntForm.body.contains("data-testid=\"hunt-settings\"") && huntForm.body.contains("data-param=\"Mode\""))
        let badHunt = try ivan.post("/hunts/new", [
            ("csrf", csrf), ("artifact", "Test.Typed"), ("p.Mode", "slow"), ("expiry_hours", "0"), ("client_limit", "-1"), ("labels", "web"),
        ])
        #expect(badHunt.status == 400 && badHunt.body.contains("expiry: from 1 hour") && badHunt.body.contains("client limit")
                && badHunt.body.contains("is not one of fast, thorough") && badHunt.body.contains("value=\"web\""))
        let huntsBefore = try await fleet.get("/hunts", as: [HuntRecord].self).count
        let created = try ivan.post("/hunts/new", [
            ("csrf", csrf), ("artifact", "Test.Typed"), ("p.Mode", "thorough"), ("p.Deep", "N"), ("p.Pattern", "."), ("p.Ratio", "0.5"),
            ("description", "typed from the console"), ("labels", "web, db"), ("exclude_labels", "lab"), ("os", "linux"),
            ("expiry_hours", "2"), ("client_limit", "5"),
        ])
        #expect(created.status == 303 && created.header("Location")?.hasPrefix("/hunts/H.") == true)
        let huntsNow = try await fleet.get("/hunts", as: [HuntRecord].self)
        #expect(huntsNow.count == huntsBefore + 1)
        let newHunt = try #require(huntsNow.first { $0.description == "typed from the console" })
        #expect(newHunt.request.parameters == ["Mode": "thorough", "Deep": "N"] && newHunt.conditions == HuntConditions(labels: ["web", "db"], excludeLabels: ["lab"], os: "linux"))
        #expect(newHunt.clientLimit == 5 && abs(newHunt.expiresAt - newHunt.createdAt - 7200) < 5 && newHunt.creator == "ivan")

        // Its page offers stop and archive; stopping it there stops it, and then start is offered.
        let huntPage = try ivan.get("/hunts/\(newHunt.huntId)")
        #expect(huntPage.body.contains("data-testid=\"hunt-stop\"") && huntPage.body.contains("data-testid=\"hunt-archive\"") && !huntPage.body.contains("data-testid=\"hunt-start\""))
        #expect(try ivan.post("/hunts/\(newHunt.huntId)/stop", [("csrf", csrf)]).status == 303)
        #expect(try await fleet.get("/hunts/\(newHunt.huntId)", as: HuntView.self).hunt.state == .stopped)
        #expect(try ivan.get("/hunts/\(newHunt.huntId)").body.contains("data-testid=\"hunt-start\""))
        #expect(try ivan.post("/hunts/\(newHunt.huntId)/stop", [("csrf", csrf)]).status == 409)
        #expect(try ivan.post("/hunts/\(newHunt.huntId)/explode", [("csrf", csrf)]).status == 404)

        // A reader sees no collect link and is refused the page and the post.
        let rita = try ConsoleClient(fleet: fleet, name: "rita")
        #expect(try rita.signIn("rita", Self.password).status == 303)
        let ritaPage = try rita.get("/clients/\(id)")
        #expect(!ritaPage.body.contains("data-testid=\"collect-link\""))
        #expect(try rita.get("/clients/\(id)/collect").status == 403)
        let ritaCSRF = try #require(ritaPage.field("csrf"))
        #expect(try rita.post("/clients/\(id)/collect", [("csrf", ritaCSRF), ("artifact", "Test.Rows")]).status == 403)
        #expect(try !rita.get("/hunts").body.contains("data-testid=\"new-hunt-link\""))
        #expect(try rita.get("/hunts/new").status == 403)
        #expect(try !rita.get("/hunts/\(newHunt.huntId)").body.contains("data-testid=\"hunt-start\""))
        #expect(try rita.post("/hunts/\(newHunt.huntId)/start", [("csrf", ritaCSRF)]).status == 403)
        #expect(try rita.post("/hunts/new", [("csrf", ritaCSRF), ("artifact", "Test.Rows"), ("expiry_hours", "1")]).status == 403)
        // No token, or a server artifact, is refused too.
        #expect(try ivan.post("/clients/\(id)/collect", [("artifact", "Test.Rows")]).status == 403)
        #expect(try ivan.post("/clients/\(id)/collect", [("csrf", csrf), ("artifact", "No.Such")]).status == 400)
    }
}
