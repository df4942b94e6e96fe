import Prometheus

/// The server's Prometheus metrics, served at /metrics.
public final class FleetMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let connectedClients: Gauge
    let enrolments: Counter
    let rowsIngested: Counter
    let bytesIngested: Counter
    let batchesIngested: Counter
    let duplicateBatches: Counter
    let rejectedBatches: Counter
    let flowsScheduled: Gauge
    let flowsRunning: Gauge
    let huntClientsScheduled: Gauge
    let huntClientsFinished: Gauge
    let apiRequests: Counter

    public init() {
        connectedClients = registry.makeGauge(name: "quarry_connected_clients", help: "Agents connected now")
        enrolments = registry.makeCounter(name: "quarry_enrolments_total", help: "Agents enrolled since start")
        rowsIngested = registry.makeCounter(name: "quarry_rows_ingested_total", help: "Result rows stored")
        bytesIngested = registry.makeCounter(name: "quarry_bytes_ingested_total", help: "Bytes of results and uploads received")
        batchesIngested = registry.makeCounter(name: "quarry_batches_ingested_total", help: "Batches stored")
        duplicateBatches = registry.makeCounter(name: "quarry_batches_duplicate_total", help: "Batches received again and acknowledged without storing")
        rejectedBatches = registry.makeCounter(name: "quarry_batches_rejected_total", help: "Batches refused (not the sender's flow)")
        flowsScheduled = registry.makeGauge(name: "quarry_flows_queued", help: "Flows waiting for their agent")
        flowsRunning = registry.makeGauge(name: "quarry_flows_running", help: "Flows running on agents")
        huntClientsScheduled = registry.makeGauge(name: "quarry_hunt_clients_scheduled", help: "Clients scheduled in running hunts' current rounds")
        huntClientsFinished = registry.makeGauge(name: "quarry_hunt_clients_finished", help: "Clients done in running hunts' current rounds")
        apiRequests = registry.makeCounter(name: "quarry_api_requests_total", help: "Analyst API requests")
    }

    public func text() -> String { registry.emitToString() }
}
