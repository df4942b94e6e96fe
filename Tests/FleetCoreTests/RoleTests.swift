import FleetCore
import Testing

@Suite struct RoleTests {
    @Test func higherRolesHoldLowerPermissions() {
        #expect(Role.reader.permissions.isSubset(of: Role.investigator.permissions))
        #expect(Role.investigator.permissions.isSubset(of: Role.administrator.permissions))
        #expect(!Role.reader.permissions.contains("START_HUNT"))
        #expect(!Role.investigator.permissions.contains("EXECVE"))
    }

    @Test func huntConditionsMatchLabelsAndOS() {
        let c = HuntConditions(labels: ["web", "db"], excludeLabels: ["canary"], os: "linux")
        #expect(c.matches(labels: ["db"], os: "Linux"))
        #expect(!c.matches(labels: ["db", "canary"], os: "linux"))
        #expect(!c.matches(labels: ["mail"], os: "linux"))
        #expect(!c.matches(labels: ["web"], os: "windows"))
        #expect(HuntConditions().matches(labels: [], os: "anything"))
    }
}
