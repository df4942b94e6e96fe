import Testing
import QuarryHost
import VQL

@Suite struct HostLibraryTests {
    @Test func declarationsHaveUniqueNames() {
        let names = HostLibrary.plugins.map(\.name)
        #expect(Set(names).count == names.count)
    }
}
