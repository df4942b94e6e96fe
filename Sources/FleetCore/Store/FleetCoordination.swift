import Foundation

/// What several server frontends sharing one datastore need so that each scheduling decision is
/// taken once: atomic hunt fan-out, compare-and-set on hunt rounds, and cheap polls for work that
/// another frontend created for a client connected here.
public protocol FleetCoordination: Sendable {
    /// Adds hunt flows in one transaction, serialised per hunt across frontends: a client that
    /// already has a flow in the hunt's round is skipped, at most `clientLimit` clients per round,
    /// at most `ratePerMinute` flows of the hunt created in the 60 s before `now`. Returns the flows
    /// actually added (the caller delivers those).
    func addHuntFlows(_ flows: [FlowRecord], clientLimit: Int?, ratePerMinute: Int?, now: Double) async throws -> [FlowRecord]
    /// Stores `hunt` only if its round in the datastore is still `fromRound` (compare-and-set), so
    /// of several frontends deciding to start the next round only one does. Returns whether it did.
    func advanceHunt(_ hunt: HuntRecord, fromRound: Int) async throws -> Bool
    /// Per-client state of a hunt's flows, without the requests (the planner's input).
    func huntAssignments(_ huntId: String) async throws -> [HuntAssignment]
    /// Flows still waiting for delivery that were created after `createdAfter` (any client).
    func scheduledFlows(createdAfter: Double) async throws -> [FlowRecord]
    /// Running flows an analyst asked to cancel.
    func pendingCancellations() async throws -> [FlowRecord]
}

/// A hunt flow as the planner sees it.
public struct HuntAssignment: Codable, Sendable, Equatable {
    public var flowId: String
    public var clientId: String
    public var round: Int
    public var createdAt: Double
    public var state: FlowState
    public init(flowId: String, clientId: String, round: Int, createdAt: Double, state: FlowState) {
        self.flowId = flowId
        self.clientId = clientId
        self.round = round
        self.createdAt = createdAt
        self.state = state
    }
}
