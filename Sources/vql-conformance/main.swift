import Foundation
import VQLConformance

// vql-conformance CASES.json [ID…]: runs Velociraptor's VQL corpus, prints each failure with a diff
// and ends with "N passed, M failed".
let arguments = Array(CommandLine.arguments.dropFirst())
guard let file = arguments.first else {
    FileHandle.standardError.write(Data("usage: vql-conformance CASES.json [CASE-ID…]\n".utf8))
    exit(2)
}
do {
    let results = try ConformanceRunner.run(casesFile: file, only: Set(arguments.dropFirst()))
    for result in results where !result.passed {
        print("FAIL \(result.id)\n\(result.report)")
    }
    let passed = results.filter(\.passed).count
    print("\(passed) passed, \(results.count - passed) failed")
    exit(results.count == passed ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("vql-conformance: \(error)\n".utf8))
    exit(2)
}
