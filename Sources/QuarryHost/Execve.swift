import Foundation
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// `execve()`: runs a program (needs the EXECVE permission) and yields its output. stdin is
/// /dev/null, both pipes are drained together (no deadlock), capture is bounded by `length`, and
/// the child is killed when the query stops early or is cancelled.
public enum Execve {
    public static var plugins: [PluginDeclaration] { [execve] }

    static let schema = Schema(["Stdout", "Stderr", "ReturnCode", "Complete"], caseInsensitiveFallback: true)

    public static let execve = PluginDeclaration(
        name: "execve",
        summary: "Runs a program; rows carry Stdout/Stderr chunks, the last has ReturnCode and Complete=true.",
        arguments: [
            ArgumentSpec("argv", .stringList, required: true, "Program and arguments (the program is looked up in PATH)."),
            ArgumentSpec("env", .dict, "Extra environment variables."),
            ArgumentSpec("cwd", .string, "Working directory."),
            ArgumentSpec("length", .int, "Bytes of output per row (default 10 MiB)."),
            ArgumentSpec("sep", .string, "Split stdout into one row per separator-terminated record."),
        ],
        columns: [
            ColumnSpec("Stdout", .string, "Standard output (a chunk or record)."), ColumnSpec("Stderr", .string, "Standard error."),
            ColumnSpec("ReturnCode", .int, "Exit status (negative signal number when killed); 0 before the end."),
            ColumnSpec("Complete", .bool, "True on the last row."),
        ],
        examples: ["SELECT Stdout, ReturnCode FROM execve(argv=['echo', 'hello'])"],
        permissions: [.execve]
    ) { ctx in
        guard ctx.context.require(.execve, for: "execve") else { return ArrayCursor([]) }
        let argv = ctx.strings("argv") ?? []
        guard let program = argv.first, let executable = resolve(program) else {
            ctx.log(.error, "execve: cannot find program '\(argv.first ?? "")'")
            return ArrayCursor([])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        if let cwd = ctx.string("cwd") { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        if case .dict(let env)? = ctx.value("env") {
            var environment = ProcessInfo.processInfo.environment
            for (key, value) in env.pairs { environment[key] = value.stringValue ?? JSONWriter.string(value) }
            process.environment = environment
        }
        let stdout = Pipe(), stderr = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            ctx.log(.error, "execve: \(program): \(error)")
            return ArrayCursor([])
        }
        let runner = Runner(process: process, stdout: stdout.fileHandleForReading.fileDescriptor,
                            stderr: stderr.fileHandleForReading.fileDescriptor,
                            length: Int(clamping: max(1, ctx.int("length") ?? (10 << 20))),
                            separator: ctx.bytes("sep").flatMap { $0.isEmpty ? nil : $0 },
                            cancellation: ctx.context.cancellation)
        // Keep the pipe objects alive as long as the runner reads from their descriptors.
        return GeneratorCursor(onClose: { runner.stop(); _ = (stdout, stderr) }) { try runner.next() }
    }

    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Pumps both pipes with poll(2) and turns the output into rows.
    final class Runner {
        let process: Process
        var fds: [Int32]
        let length: Int
        let separator: [UInt8]?
        let cancellation: CancellationFlag
        var out: [UInt8] = []
        var err: [UInt8] = []
        var finished = false

        init(process: Process, stdout: Int32, stderr: Int32, length: Int, separator: [UInt8]?, cancellation: CancellationFlag) {
            self.process = process
            self.fds = [stdout, stderr]
            self.length = length
            self.separator = separator
            self.cancellation = cancellation
        }

        func row(_ stdout: [UInt8], _ stderr: [UInt8], code: Int64, complete: Bool) -> Value {
            .dict(Dict(schema: Execve.schema, values: [.string(bytes: stdout), .string(bytes: stderr), .int(code), .bool(complete)]))
        }

        /// Where unconsumed stdout starts in `out`, and where the separator search resumes.
        var outStart = 0
        var scanFrom = 0

        /// A complete record (with `sep`) or a full chunk, if one is buffered. Consumed output is
        /// dropped in bulk, so many small records stay linear.
        func bufferedRow() -> Value? {
            if let separator {
                if let end = firstIndex(of: separator, from: max(outStart, scanFrom)) {
                    let record = Array(out[outStart..<end])
                    outStart = end + separator.count
                    scanFrom = outStart
                    compact()
                    return row(record, [], code: 0, complete: false)
                }
                scanFrom = max(outStart, out.count - separator.count + 1)
            }
            if out.count - outStart >= length || err.count >= length {
                let o = Array(out[outStart..<min(out.count, outStart + length)]), e = Array(err.prefix(length))
                outStart += o.count
                scanFrom = max(scanFrom, outStart)
                err.removeFirst(e.count)
                compact()
                return row(o, e, code: 0, complete: false)
            }
            return nil
        }

        private func compact() {
            guard outStart > 0 && (outStart == out.count || outStart > 1 << 16) else { return }
            out.removeSubrange(0..<outStart)
            scanFrom -= outStart
            outStart = 0
        }

        func firstIndex(of needle: [UInt8], from start: Int) -> Int? {
            guard let first = needle.first, out.count >= needle.count else { return nil }
            var i = start
            while i + needle.count <= out.count {
                if out[i] == first && out[i..<(i + needle.count)].elementsEqual(needle) { return i }
                i += 1
            }
            return nil
        }

        func next() throws -> Value? {
            if finished { return nil }
            while true {
                if let buffered = bufferedRow() { return buffered }
                if fds.allSatisfy({ $0 < 0 }) {
                    process.waitUntilExit()
                    finished = true
                    let code = Int64(process.terminationStatus)
                    return row(Array(out[outStart...]), err, code: process.terminationReason == .uncaughtSignal ? -code : code, complete: true)
                }
                if cancellation.isCancelled {
                    stop()
                    throw QueryCancelled()
                }
                var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                let ready = poll(&polls, nfds_t(polls.count), 100)
                if ready <= 0 { continue }
                var buffer = [UInt8](repeating: 0, count: 65536)
                for i in polls.indices where polls[i].fd >= 0 && polls[i].revents != 0 {
                    let n = buffer.withUnsafeMutableBytes { read(polls[i].fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        if i == 0 { out.append(contentsOf: buffer[0..<n]) } else { err.append(contentsOf: buffer[0..<n]) }
                    } else if n == 0 || errno != EINTR {
                        fds[i] = -1
                    }
                }
            }
        }

        func stop() {
            guard !finished else { return }
            finished = true
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }
}
