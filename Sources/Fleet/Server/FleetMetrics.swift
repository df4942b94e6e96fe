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
    let refusedConnections: Counter
    let refusedEnrolments: Counter
    let alertsRaised: Counter

    public init() {
        connectedClients = registry.makeGauge(descriptor: .init(namespace: "quarry", metricName: "connected_clients", unitName: "", helpText: "Agents connected now"))
        enrolments = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "enrolments_total", unitName: "", helpText: "Agents enrolled since start"))
        rowsIngested = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "rows_ingested_total", unitName: "", helpText: "Result rows stored"))
        bytesIngested = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "bytes_ingested_total", unitName: "", helpText: "Bytes of results and uploads received"))
        batchesIngested = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "batches_ingested_total", unitName: "", helpText: "Batches stored"))
        duplicateBatches = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "batches_duplicate_total", unitName: "", helpText: "Batches received again and acknowledged without storing"))
        rejectedBatches = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "batches_rejected_total", unitName: "", helpText: "Batches refused (not the sender's flow)"))
        flowsScheduled = registry.makeGauge(descriptor: .init(namespace: "quarry", metricName: "flows_queued", unitName: "", helpText: "Flows waiting for their agent"))
        flowsRunning = registry.makeGauge(descriptor: .init(namespace: "quarry", metricName: "flows_running", unitName: "", helpText: "Flows running on agents"))
        huntClientsScheduled = registry.makeGauge(descriptor: .init(namespace: "quarry", metricName: "hunt_clients_scheduled", unitName: "", helpText: "Clients scheduled in running hunts' current rounds"))
        huntClientsFinished = registry.makeGauge(descriptor: .init(namespace: "quarry", metricName: "hunt_clients_finished", unitName: "", helpText: "Clients done in running hunts' current rounds"))
        apiRequests = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "api_requests_total", unitName: "", helpText: "Analyst API requests"))
        refusedConnections = registry.makeCounter(
            descriptor: .init(namespace: "quarry", metricName: "connections_refused_total", unitName: "", helpText: "Connections closed on arrival (max_connections or per-address limit)"))
        refusedEnrolments = registry.makeCounter(
            descriptor: .init(namespace: "quarry", metricName: "enrolments_refused_total", unitName: "", helpText: "Enrolments refused (wrong secret), audited or not"))
        alertsRaised = registry.makeCounter(descriptor: .init(namespace: "quarry", metricName: "alerts_total", unitName: "", helpText: "Alerts raised by detections and stored"))
    }

    public func text() -> String { registry.emitToString() }
}
