/// The agent's limits on itself (`limits:` in client.yaml). An agent runs as root on every endpoint:
/// a heavy or runaway query must never make the host slow or short of memory, so the agent watches
/// its own resident memory and CPU time, and cancels the collection to blame. The defaults follow the
/// osquery watchdog (200 MB, 10% CPU).
///
/// CPU is measured in percent of one core, averaged over `cpuWindowSeconds`. Each collection and the
/// whole agent process are held to `maxCPUPercent`. A request's own `cpu_limit` keeps working as
/// before (plugins pace themselves to it); the agent's budget is the ceiling above it.
public struct AgentLimits: Codable, Sendable, Equatable {
    /// Off: nothing is measured, cancelled or refused (request limits still apply).
    public var enabled = true
    /// The agent's resident memory ceiling (MB, 10^6 bytes): over it, the collection that grew the most is cancelled.
    public var maxMemoryMB: Double = 200
    /// Most growth of resident memory (MB) since a collection began before that collection is
    /// cancelled; nil means `maxMemoryMB`.
    public var maxCollectionMemoryMB: Double?
    /// CPU budget in percent of one core, per collection and for the whole agent.
    public var maxCPUPercent: Double = 10
    /// Seconds over which CPU use is averaged before a collection is cancelled for it.
    public var cpuWindowSeconds: Double = 30
    /// Seconds an artifact stays refused after `strikes` cancellations within that time.
    public var cooldownSeconds: Double = 600
    /// Cancellations by these limits (of the same artifact, within `cooldownSeconds`) before the
    /// artifact is refused.
    public var strikes = 2
    /// Seconds between two measurements.
    public var sampleIntervalSeconds: Double = 1

    enum CodingKeys: String, CodingKey {
        case enabled, maxMemoryMB = "max_memory_mb", maxCollectionMemoryMB = "max_collection_memory_mb"
        case maxCPUPercent = "max_cpu_percent", cpuWindowSeconds = "cpu_window_seconds", cooldownSeconds = "cooldown_seconds"
        case strikes, sampleIntervalSeconds = "sample_interval_seconds"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = AgentLimits()
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? defaults.enabled
        maxMemoryMB = try c.decodeIfPresent(Double.self, forKey: .maxMemoryMB) ?? defaults.maxMemoryMB
        maxCollectionMemoryMB = try c.decodeIfPresent(Double.self, forKey: .maxCollectionMemoryMB)
        maxCPUPercent = try c.decodeIfPresent(Double.self, forKey: .maxCPUPercent) ?? defaults.maxCPUPercent
        cpuWindowSeconds = try c.decodeIfPresent(Double.self, forKey: .cpuWindowSeconds) ?? defaults.cpuWindowSeconds
        cooldownSeconds = try c.decodeIfPresent(Double.self, forKey: .cooldownSeconds) ?? defaults.cooldownSeconds
        strikes = try c.decodeIfPresent(Int.self, forKey: .strikes) ?? defaults.strikes
        sampleIntervalSeconds = try c.decodeIfPresent(Double.self, forKey: .sampleIntervalSeconds) ?? defaults.sampleIntervalSeconds
        try validate()
    }

    /// Refuses values that would make the watchdog meaningless or divide by zero.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw AgentLimitsError(description: "limits: " + message) }
        }
        try require(maxMemoryMB > 0, "max_memory_mb must be more than 0")
        try require((maxCollectionMemoryMB ?? 1) > 0, "max_collection_memory_mb must be more than 0")
        try require(maxCPUPercent > 0, "max_cpu_percent must be more than 0")
        try require(cpuWindowSeconds > 0, "cpu_window_seconds must be more than 0")
        try require(cooldownSeconds >= 0, "cooldown_seconds must not be negative")
        try require(strikes >= 1, "strikes must be at least 1")
        try require(sampleIntervalSeconds > 0 && sampleIntervalSeconds <= cpuWindowSeconds, "sample_interval_seconds must be more than 0 and at most cpu_window_seconds")
    }

    /// Bytes of the memory ceiling.
    public var maxMemoryBytes: Int64 { Int64(maxMemoryMB * 1_000_000) }
    /// Bytes a collection may grow the agent's resident memory by.
    public var maxCollectionMemoryBytes: Int64 { Int64((maxCollectionMemoryMB ?? maxMemoryMB) * 1_000_000) }
}

/// A `limits:` section with a value out of range.
public struct AgentLimitsError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
