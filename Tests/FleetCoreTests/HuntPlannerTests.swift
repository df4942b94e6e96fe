import FleetCore
import Testing

/// A fake server around the planner: it applies decisions the way the real one would, with a plain
/// Double for a clock.
struct PlannerWorld {
    var hunts: [HuntRecord]
    var clients: [PlannerClient]
    var assignments: [PlannerAssignment] = []

    init(hunts: [HuntRecord], clients: [PlannerClient]) {
        self.hunts = hunts
        self.clients = clients
    }

    func plan(at now: Double) -> [PlannerDecision] {
        HuntPlanner.plan(hunts: hunts, clients: clients, assignments: assignments, now: now)
    }

    /// Plans at `now` and applies the decisions; returns them.
    @discardableResult
    mutating func step(at now: Double) -> [PlannerDecision] {
        let decisions = plan(at: now)
        apply(decisions, at: now)
        return decisions
    }

    mutating func apply(_ decisions: [PlannerDecision], at now: Double) {
        for decision in decisions {
            switch decision {
            case .schedule(let huntId, let clientId, let round):
                assignments.append(PlannerAssignment(huntId: huntId, clientId: clientId, round: round, scheduledAt: now))
            case .expire(let huntId):
                update(huntId) { $0.state = .expired }
                for i in assignments.indices where assignments[i].huntId == huntId && assignments[i].state == .scheduled {
                    assignments[i].state = .cancelled
                }
            case .startRound(let huntId, let round, let nextRoundAt):
                update(huntId) {
                    $0.round = round
                    $0.roundStartedAt = now
                    $0.nextRoundAt = nextRoundAt
                }
            }
        }
    }

    mutating func update(_ huntId: String, _ change: (inout HuntRecord) -> Void) {
        for i in hunts.indices where hunts[i].huntId == huntId { change(&hunts[i]) }
    }

    mutating func connect(_ clientId: String, _ connected: Bool = true) {
        for i in clients.indices where clients[i].clientId == clientId { clients[i].connected = connected }
    }
}

func makeHunt(
    _ id: String = "H.1", state: HuntState = .running, conditions: HuntConditions = HuntConditions(),
    expiresAt: Double = 2_000_000_000, schedule: String? = nil, clientLimit: Int? = nil, ratePerMinute: Int? = nil
) -> HuntRecord {
    var hunt = HuntRecord(
        huntId: id, request: CollectionRequest(artifacts: ["Generic.Client.Info"]), conditions: conditions,
        state: state, creator: "alice", createdAt: 0, expiresAt: expiresAt)
    hunt.schedule = schedule
    hunt.clientLimit = clientLimit
    hunt.ratePerMinute = ratePerMinute
    return hunt
}

func client(_ id: String, _ labels: [String] = [], os: String = "linux", connected: Bool = true) -> PlannerClient {
    PlannerClient(clientId: id, labels: labels, os: os, connected: connected)
}

/// The client IDs of the `.schedule` decisions, in order.
func scheduled(_ decisions: [PlannerDecision], round: Int? = nil) -> [String] {
    decisions.compactMap {
        guard case .schedule(_, let clientId, let r) = $0, round == nil || r == round else { return nil }
        return clientId
    }
}

@Suite struct HuntPlannerTests {
    let t0 = 1_700_000_000.0

    @Test func newHuntFansOutToConnectedClientsAtOnce() {
        let hunt = makeHunt(expiresAt: t0 + 3600)
        let clients = [client("C.3"), client("C.1"), client("C.2", connected: false), client("C.0")]
        let decisions = HuntPlanner.plan(hunts: [hunt], clients: clients, assignments: [], now: t0)
        #expect(
            decisions == [
                .startRound(huntId: "H.1", round: 1, nextRoundAt: nil),
                .schedule(huntId: "H.1", clientId: "C.0", round: 1),
                .schedule(huntId: "H.1", clientId: "C.1", round: 1),
                .schedule(huntId: "H.1", clientId: "C.3", round: 1),
            ])
    }

    @Test func conditionsFilterByLabelExcludedLabelAndOS() {
        let conditions = HuntConditions(labels: ["web", "db"], excludeLabels: ["canary"], os: "linux")
        let clients = [
            client("C.1", ["web"]), client("C.2", ["db", "canary"]), client("C.3", ["mail"]),
            client("C.4", ["db"], os: "Windows"), client("C.5", ["db", "x"], os: "Linux"), client("C.6"),
        ]
        let decisions = HuntPlanner.plan(hunts: [makeHunt(conditions: conditions)], clients: clients, assignments: [], now: t0)
        #expect(scheduled(decisions) == ["C.1", "C.5"])
    }

    @Test func clientThatConnectsLaterIsScheduledOnceInALaterCall() {
        var world = PlannerWorld(hunts: [makeHunt()], clients: [client("C.1"), client("C.2", connected: false)])
        #expect(scheduled(world.step(at: t0)) == ["C.1"])
        #expect(world.step(at: t0 + 10).isEmpty)
        world.connect("C.2")
        #expect(world.step(at: t0 + 20) == [.schedule(huntId: "H.1", clientId: "C.2", round: 1)])
        #expect(world.step(at: t0 + 30).isEmpty)
        // A client enrolled after the hunt started gets it too, exactly once.
        world.clients.append(client("C.0"))
        #expect(world.step(at: t0 + 40) == [.schedule(huntId: "H.1", clientId: "C.0", round: 1)])
        world.connect("C.0", false)
        world.connect("C.0", true)
        #expect(world.step(at: t0 + 50).isEmpty)
        #expect(world.assignments.map(\.clientId) == ["C.1", "C.2", "C.0"])
    }

    @Test func anyExistingFlowOfTheRoundCountsWhateverItsState() {
        let hunt = makeHunt()
        var world = PlannerWorld(hunts: [hunt], clients: [client("C.1"), client("C.2")])
        world.step(at: t0)
        world.assignments[0].state = .error
        world.assignments[1].state = .cancelled
        #expect(world.step(at: t0 + 5).isEmpty)
    }

    @Test func clientLimitHoldsAcrossCalls() {
        var world = PlannerWorld(
            hunts: [makeHunt(clientLimit: 3)], clients: [client("C.1"), client("C.2", connected: false), client("C.3")])
        #expect(scheduled(world.step(at: t0)) == ["C.1", "C.3"])
        world.connect("C.2")
        world.clients += [client("C.0"), client("C.4")]
        #expect(scheduled(world.step(at: t0 + 10)) == ["C.0"])  // the third and last client
        #expect(world.step(at: t0 + 20).isEmpty)
        #expect(Set(world.assignments.map(\.clientId)) == ["C.0", "C.1", "C.3"])
    }

    @Test func rateLimitSpreadsSchedulesOverMinutes() {
        let clients = (1...5).map { client("C.\($0)") }
        var world = PlannerWorld(hunts: [makeHunt(ratePerMinute: 2)], clients: clients)
        #expect(scheduled(world.step(at: t0)) == ["C.1", "C.2"])
        #expect(scheduled(world.step(at: t0 + 30)) == [])
        #expect(scheduled(world.step(at: t0 + 61)) == ["C.3", "C.4"])  // the window is (now - 60, now]
        #expect(scheduled(world.step(at: t0 + 100)) == [])
        #expect(scheduled(world.step(at: t0 + 122)) == ["C.5"])
        #expect(world.step(at: t0 + 300).isEmpty)
    }

    @Test func rateAndClientLimitTogether() {
        let clients = (1...6).map { client("C.\($0)") }
        var world = PlannerWorld(hunts: [makeHunt(clientLimit: 3, ratePerMinute: 2)], clients: clients)
        #expect(scheduled(world.step(at: t0)) == ["C.1", "C.2"])
        #expect(scheduled(world.step(at: t0 + 61)) == ["C.3"])
        #expect(world.step(at: t0 + 200).isEmpty)
    }

    @Test func zeroOrNegativeLimitsMeanNoLimit() {
        let clients = (1...3).map { client("C.\($0)") }
        let hunt = makeHunt(clientLimit: 0, ratePerMinute: -1)
        #expect(scheduled(HuntPlanner.plan(hunts: [hunt], clients: clients, assignments: [], now: t0)).count == 3)
    }

    @Test func expiryEndsTheHuntAndNothingElse() {
        var world = PlannerWorld(hunts: [makeHunt(expiresAt: t0 + 100)], clients: [client("C.1")])
        world.step(at: t0)
        world.clients.append(client("C.2"))
        #expect(world.step(at: t0 + 100) == [.expire(huntId: "H.1")])
        #expect(world.hunts[0].state == .expired)
        #expect(world.assignments.map(\.state) == [.cancelled])
        #expect(world.step(at: t0 + 200).isEmpty)

        // A hunt that expires before it ever started does not start.
        let late = makeHunt("H.2", expiresAt: t0)
        #expect(HuntPlanner.plan(hunts: [late], clients: [client("C.1")], assignments: [], now: t0) == [.expire(huntId: "H.2")])
    }

    @Test(arguments: [HuntState.paused, .stopped, .expired, .archived])
    func onlyRunningHuntsAct(_ state: HuntState) {
        var hunt = makeHunt(state: state, expiresAt: t0 - 1, schedule: "@every 60s")
        #expect(HuntPlanner.plan(hunts: [hunt], clients: [client("C.1")], assignments: [], now: t0).isEmpty)
        hunt.expiresAt = t0 + 1000
        hunt.round = 1
        hunt.nextRoundAt = t0 - 5
        #expect(HuntPlanner.plan(hunts: [hunt], clients: [client("C.1")], assignments: [], now: t0).isEmpty)
    }

    @Test func everyMinuteHuntRunsRoundsAndSchedulesEachClientOncePerRound() {
        var world = PlannerWorld(hunts: [makeHunt(schedule: "@every 60s")], clients: [client("C.1"), client("C.2")])
        #expect(
            world.step(at: t0) == [
                .startRound(huntId: "H.1", round: 1, nextRoundAt: t0 + 60),
                .schedule(huntId: "H.1", clientId: "C.1", round: 1),
                .schedule(huntId: "H.1", clientId: "C.2", round: 1),
            ])
        #expect(world.step(at: t0 + 30).isEmpty)
        #expect(world.step(at: t0 + 59.9).isEmpty)
        #expect(
            world.step(at: t0 + 60) == [
                .startRound(huntId: "H.1", round: 2, nextRoundAt: t0 + 120),
                .schedule(huntId: "H.1", clientId: "C.1", round: 2),
                .schedule(huntId: "H.1", clientId: "C.2", round: 2),
            ])
        #expect(world.step(at: t0 + 90).isEmpty)
        // A round is late (the server was down): one new round, the next one a minute after now.
        #expect(
            world.step(at: t0 + 500) == [
                .startRound(huntId: "H.1", round: 3, nextRoundAt: t0 + 560),
                .schedule(huntId: "H.1", clientId: "C.1", round: 3),
                .schedule(huntId: "H.1", clientId: "C.2", round: 3),
            ])
        let perRound = Dictionary(grouping: world.assignments, by: \.round).mapValues { $0.map(\.clientId).sorted() }
        #expect(perRound == [1: ["C.1", "C.2"], 2: ["C.1", "C.2"], 3: ["C.1", "C.2"]])
    }

    @Test func cronHuntTakesItsRoundTimesFromTheCron() {
        let start = utc("2024-03-01T10:07:00Z")
        var world = PlannerWorld(hunts: [makeHunt(expiresAt: start + 86_400, schedule: "0 * * * *")], clients: [client("C.1")])
        #expect(world.step(at: start).first == .startRound(huntId: "H.1", round: 1, nextRoundAt: utc("2024-03-01T11:00:00Z")))
        #expect(world.step(at: utc("2024-03-01T10:59:59Z")).isEmpty)
        #expect(
            world.step(at: utc("2024-03-01T11:00:00Z")) == [
                .startRound(huntId: "H.1", round: 2, nextRoundAt: utc("2024-03-01T12:00:00Z")),
                .schedule(huntId: "H.1", clientId: "C.1", round: 2),
            ])
    }

    @Test func oneShotHuntStaysInRoundOne() {
        var world = PlannerWorld(hunts: [makeHunt()], clients: [client("C.1")])
        world.step(at: t0)
        world.hunts[0].nextRoundAt = t0 + 1  // ignored without a schedule
        #expect(world.step(at: t0 + 86_400).isEmpty)
        #expect(world.hunts[0].round == 1)
    }

    @Test func invalidCronMakesAOneShotHunt() {
        var world = PlannerWorld(hunts: [makeHunt(schedule: "61 * * *")], clients: [client("C.1")])
        #expect(
            world.step(at: t0) == [
                .startRound(huntId: "H.1", round: 1, nextRoundAt: nil), .schedule(huntId: "H.1", clientId: "C.1", round: 1),
            ])
        world.hunts[0].nextRoundAt = t0 + 1
        #expect(world.step(at: t0 + 3600).isEmpty)
    }

    @Test func huntsActInTheGivenOrder() {
        let hunts = [
            makeHunt("H.b", conditions: HuntConditions(labels: ["web"])), makeHunt("H.a", state: .paused),
            makeHunt("H.c", expiresAt: t0), makeHunt("H.a2"),
        ]
        let clients = [client("C.2", ["web"]), client("C.1")]
        #expect(
            HuntPlanner.plan(hunts: hunts, clients: clients, assignments: [], now: t0) == [
                .startRound(huntId: "H.b", round: 1, nextRoundAt: nil),
                .schedule(huntId: "H.b", clientId: "C.2", round: 1),
                .expire(huntId: "H.c"),
                .startRound(huntId: "H.a2", round: 1, nextRoundAt: nil),
                .schedule(huntId: "H.a2", clientId: "C.1", round: 1),
                .schedule(huntId: "H.a2", clientId: "C.2", round: 1),
            ])
    }

    @Test func assignmentsOfOtherHuntsDoNotCount() {
        let others = [PlannerAssignment(huntId: "H.other", clientId: "C.1", round: 1, scheduledAt: t0)]
        var hunt = makeHunt(ratePerMinute: 1)
        hunt.round = 1
        #expect(scheduled(HuntPlanner.plan(hunts: [hunt], clients: [client("C.1")], assignments: others, now: t0)) == ["C.1"])
    }

    @Test func applyingDecisionsThenPlanningAgainYieldsNothing() {
        let clients = (1...7).map { client("C.\($0)", $0 % 2 == 0 ? ["web"] : [], connected: $0 != 4) }
        let hunts = [
            makeHunt("H.1"), makeHunt("H.2", schedule: "@every 60s", clientLimit: 2),
            makeHunt("H.3", conditions: HuntConditions(labels: ["web"]), ratePerMinute: 1),
            makeHunt("H.4", expiresAt: t0 + 70), makeHunt("H.5", schedule: "*/5 * * * *"),
        ]
        var world = PlannerWorld(hunts: hunts, clients: clients)
        for now in [t0, t0 + 45, t0 + 60, t0 + 61, t0 + 75, t0 + 300, t0 + 301] {
            world.connect("C.4", now >= t0 + 60)
            let decisions = world.step(at: now)
            #expect(world.plan(at: now).isEmpty, "not idempotent at \(now - t0) after \(decisions)")
        }
    }

    @Test func plannerViewsOfRecords() {
        var record = ClientRecord(clientId: "C.9", enrolledAt: 0)
        record.labels = ["web"]
        record.os = "linux"
        #expect(PlannerClient(record, connected: true) == client("C.9", ["web"]))
        var flow = FlowRecord(
            flowId: "F.1", clientId: "C.9", huntId: "H.1", round: 2, request: CollectionRequest(artifacts: []),
            creator: "alice", createdAt: 42)
        flow.state = .running
        #expect(
            PlannerAssignment(flow)
                == PlannerAssignment(huntId: "H.1", clientId: "C.9", round: 2, scheduledAt: 42, state: .running))
        flow.huntId = nil
        #expect(PlannerAssignment(flow) == nil)
    }
}
