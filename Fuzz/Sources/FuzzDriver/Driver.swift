#if canImport(Glibc)
import Glibc
#endif
import Foundation

// libFuzzer's own entry point: it parses libFuzzer's flags and calls back once per input. SwiftPM
// links every executable with `main` aliased to the module's entry point, so a harness keeps its
// `main.swift` and hands control to libFuzzer here (rather than exporting LLVMFuzzerTestOneInput
// and letting libFuzzer's `main` in, which the alias would clash with).
@_silgen_name("LLVMFuzzerRunDriver")
private func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The running harness's body. Set once before libFuzzer starts, read only from its one thread.
nonisolated(unsafe) private var currentBody: (([UInt8]) -> Void)?

/// Runs one harness under libFuzzer. `body` gets each input and must never crash on it; a trap,
/// an AddressSanitizer report or a timeout is a finding. Given `--write-samples DIR` as its
/// first arguments, the harness instead writes `samples` (well-formed inputs made by Quarry's own
/// encoders) into DIR as seeds and exits.
public func runFuzzer(samples: () -> [[UInt8]] = { [] }, _ body: @escaping ([UInt8]) -> Void) -> Never {
    let arguments = CommandLine.arguments
    if arguments.count == 3, arguments[1] == "--write-samples" {
        exit(writeSamples(samples(), to: arguments[2]) ? 0 : 1)
    }
    currentBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = llvmFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        currentBody?(bytes)
        return 0
    }
    exit(status)
}

/// Writes each sample to DIR/sample-N; false (with a message) when the folder cannot be made.
private func writeSamples(_ samples: [[UInt8]], to directory: String) -> Bool {
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (index, sample) in samples.enumerated() {
            try Data(sample).write(to: URL(fileURLWithPath: directory + "/sample-\(index)"))
        }
        return true
    } catch {
        FileHandle.standardError.write(Data("cannot write samples to \(directory): \(error)\n".utf8))
        return false
    }
}

/// Stops the run with a message when a property that must hold for every input does not; libFuzzer
/// saves the input as a crash.
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("fuzz property failed: \(message())\n".utf8))
        abort()
    }
}
