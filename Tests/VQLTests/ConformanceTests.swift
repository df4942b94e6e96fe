import Foundation
import Testing
import VQLConformance

/// Velociraptor's own VQL corpus (from ../shared). Skipped when the folder is absent; fails when
/// the pass count falls below the ratchet.
@Suite struct ConformanceTests {
    /// Raise this when more cases pass; never lower it.
    static let ratchet = 108

    static var corpus: String { ConformanceRunner.defaultCorpus(projectRoot: TestSupport.packageRoot) }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: corpus), "the shared vfilter corpus is absent"))
    func corpusPassesAtLeastTheRatchet() throws {
        let results = try ConformanceRunner.run(casesFile: Self.corpus)
        let failures = results.filter { !$0.passed }
        let passed = results.count - failures.count
        #expect(passed >= Self.ratchet, "\(passed) passed, \(failures.count) failed:\n\(failures.map { "\($0.id)\n\($0.report)" }.joined())")
    }
}
