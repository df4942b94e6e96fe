// The hunt scheduler as a pure state machine: given the hunts, the clients, the hunt flows that exist and
// the time, it says what to do now. The server applies the decisions (creates flows, updates hunts) and
// calls again later; no clock is read and nothing is stored here.

/// A client as the hunt planner sees it: who it is, what it carries, and whether it is connected now.
public struct PlannerClient: Sendable, Equatable {
    public var clientId: String
    public var labels: [String]
    public var os: String
    /// Connected to the server now (only connected clients are scheduled).
    public var connected: Bool

    public init(clientId: String, labels: [String] = [], os: String = "", connected: Bool) {
        self.clientId = clientId
        self.labels = labels
        self.os = os
        self.connected = connected
    }

    /// The planner's view of an enrolled client; `connected` comes from the server's connection table.
    public init(_ record: ClientRecord, connected: Bool) {
        self.init(clientId: record.clientId, labels: record.labels, os: record.os, connected: connected)
    }
}

/// A hunt flow that already exists: the client it went to, in which round, when it was scheduled.
public struct PlannerAssignment: Sendable, Equatable {
    public var huntId: String
    public var clientId: String
    public var round: Int
    /// When the flow was created (seconds since 1970); the rate limit counts these.
    public var scheduledAt: Double
    public var state: FlowState

    public init(huntId: String, clientId: String, round: Int, scheduledAt: Double, state: FlowState = .scheduled) {
        self.huntId = huntId
        self.clientId = clientId
        self.round = round
        self.scheduledAt = scheduledAt
        self.state = state
    }

    /// The assignment a hunt flow stands for (`scheduledAt` is its `createdAt`); nil for a direct collection.
    public init?(_ flow: FlowRecord) {
        guard let huntId = flow.huntId else { return nil }
        self.init(huntId: huntId, clientId: flow.clientId, round: flow.round, scheduledAt: flow.createdAt, state: flow.state)
    }
}

/// One thing the server should do now, as decided by `HuntPlanner.plan`.
public enum PlannerDecision: Sendable, Equatable {
    /// Create a flow of the hunt for this client in this round.
    case schedule(huntId: String, clientId: String, round: Int)
    /// The hunt reached `expiresAt`: set its state to `.expired`; the server cancels its scheduled flows.
    case expire(huntId: String)
    /// The hunt begins round `round` (set `round`, `roundStartedAt = now`, `nextRoundAt`); `nextRoundAt`
    /// is the cron's next time after now, nil for a one-shot hunt.
    case startRound(huntId: String, round: Int, nextRoundAt: Double?)
}

/// Decides, from the hunts, clients and existing hunt flows at time `now`, which flows to create, which
/// hunts start a round and which expire.
///
/// Rules, per hunt:
/// - Only hunts in state `.running` act; paused, stopped, expired and archived hunts yield nothing.
/// - A running hunt with `now >= expiresAt` yields `.expire` and nothing else.
/// - A hunt never started (`round <= 0`) yields `.startRound(round: 1, nextRoundAt: cron.next(after: now))`
///   (nil `nextRoundAt` for a one-shot hunt) and is scheduled for round 1 in the same call: the caller
///   applies the `.startRound` before the `.schedule`s that follow it.
/// - A hunt with a valid cron `schedule` whose `nextRoundAt` is `<= now` yields
///   `.startRound(round: round + 1, nextRoundAt: cron.next(after: now))` and is scheduled for the new round
///   in the same call. Missed rounds (the server was down) are not replayed: one new round starts and the
///   next is taken from the cron after `now`. One-shot hunts stay in round 1 forever.
/// - An invalid cron text makes the hunt one-shot (`nextRoundAt` nil); the planner never throws or traps.
/// - Scheduling for the current round: every client that is `connected`, matches
///   `conditions.matches(labels:os:)` and has no assignment for (hunt, round), in any flow state, gets a
///   `.schedule`. Clients that enrol or reconnect later are picked up by a later call; disconnected
///   clients are not scheduled now.
/// - `clientLimit` N: at most N distinct clients per round, the round's existing assignments included.
/// - `ratePerMinute` N: at most N new flows of the hunt in any 60 s window: assignments of the hunt (any
///   round) with `scheduledAt > now - 60` are counted and only the remainder is scheduled now.
/// - A `clientLimit` or `ratePerMinute` that is nil, zero or negative means no limit.
/// - Output is deterministic: hunts in the given order, each hunt's `.startRound` first, then its
///   `.schedule`s with clients sorted by `clientId` (a client listed twice counts once).
///
/// Applying the decisions (updating the hunts, adding one assignment per `.schedule` at `now`) and planning
/// again at the same `now` yields nothing.
public enum HuntPlanner {
    /// The decisions for time `now`, following the rules above. `assignments` are all hunt flows that
    /// exist (any hunt, any round, any state).
    public static func plan(
        hunts: [HuntRecord], clients: [PlannerClient], assignments: [PlannerAssignment], now: Double
    ) -> [PlannerDecision] {
        let sortedClients = clients.sorted { $0.clientId < $1.clientId }
        var byHunt: [String: [PlannerAssignment]] = [:]
        for assignment in assignments { byHunt[assignment.huntId, default: []].append(assignment) }

        var decisions: [PlannerDecision] = []
        var seenHunts: Set<String> = []
        for hunt in hunts where hunt.state == .running {
            // A hunt listed twice acts once: its second copy would repeat the same decisions.
            guard seenHunts.insert(hunt.huntId).inserted else { continue }
            if now >= hunt.expiresAt {
                decisions.append(.expire(huntId: hunt.huntId))
                continue
            }
            let cron = hunt.schedule.flatMap { try? CronSchedule($0) }
            var round = hunt.round
            if round <= 0 {
                round = 1
                decisions.append(.startRound(huntId: hunt.huntId, round: 1, nextRoundAt: cron?.next(after: now)))
            } else if let cron, let due = hunt.nextRoundAt, due <= now {
                round += 1
                decisions.append(.startRound(huntId: hunt.huntId, round: round, nextRoundAt: cron.next(after: now)))
            }
            let scheduled = schedule(
                hunt, round: round, clients: sortedClients, assignments: byHunt[hunt.huntId] ?? [], now: now)
            decisions += scheduled.map { .schedule(huntId: hunt.huntId, clientId: $0, round: round) }
        }
        return decisions
    }

    /// The clients (sorted by ID) to schedule for `round` of `hunt` now, after the client limit and rate.
    private static func schedule(
        _ hunt: HuntRecord, round: Int, clients: [PlannerClient], assignments: [PlannerAssignment], now: Double
    ) -> [String] {
        let assigned = Set(assignments.lazy.filter { $0.round == round }.map(\.clientId))
        var allowed = Int.max
        if let limit = hunt.clientLimit, limit > 0 {
            allowed = max(0, limit - assigned.count)
        }
        if let rate = hunt.ratePerMinute, rate > 0 {
            let recent = assignments.lazy.filter { $0.scheduledAt > now - 60 }.count
            allowed = min(allowed, max(0, rate - recent))
        }
        var chosen: [String] = []
        var seen: Set<String> = []
        for client in clients where chosen.count < allowed {
            guard client.connected, !assigned.contains(client.clientId),
                hunt.conditions.matches(labels: client.labels, os: client.os),
                seen.insert(client.clientId).inserted
            else { continue }
            chosen.append(client.clientId)
        }
        return chosen
    }
}
