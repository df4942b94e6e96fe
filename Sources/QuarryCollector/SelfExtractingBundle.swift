import Foundation
import PrivateFiles

/// The collector as one file that runs on a Linux host with no Swift and none of Quarry's libraries:
/// a POSIX shell header, a tar.gz holding the quarry executable with every shared library it links
/// (the Swift runtime, libyara, libmagic …, and the C library and dynamic loader themselves, so the
/// host's glibc version does not matter), libmagic's database, then the spec trailer. The header
/// unpacks into a private folder (the first of $TMPDIR, the collector's folder, /var/tmp, /tmp,
/// /dev/shm, $HOME that allows running programs — noexec mounts are skipped), runs quarry through
/// the bundled loader, and removes the folder when done. It uses only sh, tail, head, tar, gzip and
/// mktemp, which every Debian and Ubuntu system has.
public enum SelfExtractingBundle {
    /// Why a bundle could not be built.
    public struct BundleError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// One shared library the executable needs: the name it asks for and the file found here.
    public struct Library: Equatable, Sendable {
        public var name: String
        public var path: String
    }

    /// The libraries `ldd` lists for `executable` (including the loader, last), or an error naming
    /// the ones that are missing.
    public static func libraries(of executable: String) throws -> [Library] {
        let output = try run("/usr/bin/ldd", [executable])
        var libraries: [Library] = []
        var missing: [String] = []
        for line in output.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.contains("=> not found") { missing.append(String(text.split(separator: " ").first ?? "")); continue }
            if let arrow = text.range(of: " => ") {
                let name = String(text[..<arrow.lowerBound])
                let rest = text[arrow.upperBound...]
                guard let path = rest.split(separator: " ").first, path.hasPrefix("/") else { continue }
                libraries.append(Library(name: name, path: String(path)))
            } else if text.hasPrefix("/"), let path = text.split(separator: " ").first {
                libraries.append(Library(name: (String(path) as NSString).lastPathComponent, path: String(path)))
            }
        }
        guard missing.isEmpty else { throw BundleError(message: "\(executable) needs libraries this machine lacks: \(missing.joined(separator: ", "))") }
        guard libraries.contains(where: { $0.name.hasPrefix("ld-linux") }) else {
            throw BundleError(message: "ldd did not name the dynamic loader of \(executable)")
        }
        return libraries
    }

    /// Writes the bundle for `executable` with `trailer` to `output` (mode 0755).
    public static func build(executable: String, trailer: Data, output: String) throws {
        let libraries = try libraries(of: executable)
        guard let loader = libraries.first(where: { $0.name.hasPrefix("ld-linux") }) else {
            throw BundleError(message: "no dynamic loader found for \(executable)")
        }
        let staging = NSTemporaryDirectory() + "quarry-bundle-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: staging + "/lib", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: staging) }
        try fm.copyItem(atPath: executable, toPath: staging + "/quarry")
        stripSymbols(staging + "/quarry")
        for library in libraries {
            // Copy the file the name resolves to, under the name the executable asks for.
            try fm.copyItem(atPath: realPath(library.path), toPath: staging + "/lib/" + library.name)
        }
        for database in ["/usr/lib/file/magic.mgc", "/usr/share/misc/magic.mgc", "/usr/share/file/magic.mgc"] where fm.fileExists(atPath: database) {
            try fm.copyItem(atPath: realPath(database), toPath: staging + "/magic.mgc")
            break
        }
        let payload = staging + ".tgz"
        defer { unlink(payload) }
        _ = try run("/bin/sh", ["-c", "tar -C \"$1\" -cf - . | gzip -1 > \"$2\"", "sh", staging, payload])
        let payloadSize = try (fm.attributesOfItem(atPath: payload)[.size] as? NSNumber)?.int64Value ?? 0

        // The header holds its own length; fixed-width numbers keep that length constant.
        func header(offset: Int) -> String { script(loader: loader.name, offset: offset, length: Int(payloadSize)) }
        let headerBytes = Data(header(offset: 0).utf8)
        let finalHeader = Data(header(offset: headerBytes.count).utf8)
        guard finalHeader.count == headerBytes.count else { throw BundleError(message: "internal error: the bundle header changed length") }

        let temporary = output + ".partial-\(getpid())"
        let fd = try PrivateFile.replace(temporary, mode: 0o755)
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temporary) }
        }
        try PrivateFile.writeAll(fd, finalHeader, path: temporary)
        guard let input = FileHandle(forReadingAtPath: payload) else { throw BundleError(message: "cannot read \(payload)") }
        defer { try? input.close() }
        while let chunk = try input.read(upToCount: 4 << 20), !chunk.isEmpty {
            try PrivateFile.writeAll(fd, chunk, path: temporary)
        }
        try PrivateFile.writeAll(fd, trailer, path: temporary)
        guard fsync(fd) == 0, rename(temporary, output) == 0 else {
            throw BundleError(message: "cannot write \(output): \(String(cString: strerror(errno)))")
        }
        ok = true
    }

    /// Removes the symbol tables from a copied executable (a quarter of the size of a release build
    /// remains), when binutils' strip is there; the copy runs the same either way.
    public static func stripSymbols(_ path: String) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strip") else { return }
        _ = try? run("/usr/bin/strip", ["--strip-unneeded", path])
    }

    /// The file a path finally names (every symbolic link on the way resolved), so copies hold bytes.
    public static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The shell header (numbers zero-padded to 12 digits so the header's length never changes).
    static func script(loader: String, offset: Int, length: Int) -> String {
        let pad = { (n: Int) in String(repeating: "0", count: max(0, 12 - String(n).count)) + String(n) }
        return """
            #!/bin/sh
            # Quarry offline collector. Run it with no argument to collect; --help says what it collects.
            # A shell header, a tar.gz with quarry and the libraries it links, then the collection spec.
            offset=\(pad(offset))
            length=\(pad(length))
            self=$(readlink -f "$0" 2>/dev/null || echo "$0")
            case "${1:-}" in -h|--help) set -- --what ;; esac
            dir=
            for base in "${TMPDIR:-}" "$(dirname "$self")" /var/tmp /tmp /dev/shm "${HOME:-}"; do
              [ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] || continue
              dir=$(mktemp -d "$base/.quarry-collector.XXXXXX" 2>/dev/null) || { dir=; continue; }
              if tail -c +$((1${offset} - 1000000000000 + 1)) "$self" | head -c $((1${length} - 1000000000000)) | tar -xzf - -C "$dir" 2>/dev/null \\
                && "$dir/lib/\(loader)" --library-path "$dir/lib" "$dir/quarry" collector run --spec "$self" --probe >/dev/null 2>&1; then
                break
              fi
              rm -rf "$dir"; dir=
            done
            if [ -z "$dir" ]; then
              echo "collector: cannot unpack into a folder that allows running programs (tried \\$TMPDIR, the collector's folder, /var/tmp, /tmp, /dev/shm, \\$HOME)" >&2
              exit 70
            fi
            trap 'rm -rf "$dir"' EXIT
            trap 'exit 130' INT TERM
            MAGIC="$dir/magic.mgc" "$dir/lib/\(loader)" --library-path "$dir/lib" "$dir/quarry" collector run --spec "$self" "$@"
            exit $?

            """
    }

    /// Runs a program and returns its standard output; a failure is an error with its stderr.
    static func run(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BundleError(message: "\(program) \(arguments.joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
