import FleetCore
import Foundation
import NIOConcurrencyHelpers

/// How one SERVER_EVENT artifact of the server monitoring table fares on the frontend that answers
/// (`GET /server-monitoring/status`, `quarry monitoring show --server`): whether it runs or waits
/// to be restarted, how often it ended, why the last time, and what it produced — so an analyst
/// sees a broken rule without reading the server's log.
public struct ServerMonitorStatus: Codable, Sendable, Equatable {
    public var artifact: String
    /// `running`, or `waiting` (ended; restarts at `nextStart`).
    public var state: String
    /// When the current (or last) run started, seconds since 1970.
    public var startedAt: Double
    /// Times it ended by itself or failed since it was started here.
    public var restarts: Int
    public var lastProblem: String?
    public var nextStart: Double?
    /// Rows stored and alerts raised since it was started here.
    public var rows: Int
    public var alerts: Int

    public init(artifact: String, state: String = "running", startedAt: Double, restarts: Int = 0, lastProblem: String? = nil, nextStart: Double? = nil, rows: Int = 0, alerts: Int = 0) {
        self.artifact = artifact
        self.state = state
        self.startedAt = startedAt
        self.restarts = restarts
        self.lastProblem = lastProblem
        self.nextStart = nextStart
        self.rows = rows
        self.alerts = alerts
    }
}

/// The statuses of the artifacts running here, updated by their threads.
final class ServerMonitorStatuses: Sendable {
    private let table = NIOLockedValueBox<[String: ServerMonitorStatus]>([:])

    func update(_ artifact: String, _ change: (inout ServerMonitorStatus) -> Void) {
        table.withLockedValue { table in
            var status = table[artifact] ?? ServerMonitorStatus(artifact: artifact, startedAt: Date().timeIntervalSince1970)
            change(&status)
            table[artifact] = status
        }
    }

    func remove(_ artifact: String) { table.withLockedValue { $0[artifact] = nil } }

    var all: [ServerMonitorStatus] { table.withLockedValue { $0.values.sorted { $0.artifact < $1.artifact } } }
}
