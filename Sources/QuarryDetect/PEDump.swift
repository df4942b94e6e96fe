import Foundation
import PrivateFiles
import VQL
#if canImport(Glibc)
import Glibc
#endif

/// pe_dump(): a PE image carved out of a live process's memory (Wine processes, or a Windows
/// payload injected into a Linux process) and put back into file layout, so parse_pe(), hash()
/// and yara() can look at what actually ran rather than at what is on disk. The headers are
/// read from the mapped base; each section is copied from its virtual address to its raw
/// offset, so an image that was not changed in memory comes back as its file, up to the end of
/// its last section (an overlay or a signature after that is never mapped and so is absent).
public enum PEDump {
    /// The largest image rebuilt (a PE's own SizeOfImage limit is 4 GiB; real ones are far smaller).
    static let maxImage = 512 << 20

    public static let function = FunctionDeclaration(
        name: "pe_dump",
        summary: "Rebuilds a PE file from a process's memory (the image mapped at base_offset in pid): headers, then each "
            + "section moved from its virtual address back to its file offset. Returns the path of a private temporary file "
            + "removed when the query ends, or with in_memory the bytes themselves (for accessor='data'). NULL, logged, "
            + "when no PE is mapped there.",
        arguments: [
            ArgumentSpec("pid", .int, required: true, "The process."),
            ArgumentSpec("base_offset", .int, required: true, "The address the image is mapped at (its MZ header)."),
            ArgumentSpec("in_memory", .int, "Keep the image in memory instead of a file, when it is at most this many bytes."),
        ],
        returns: .string,
        examples: ["SELECT pe_dump(pid=getpid(), base_offset=0) AS Image FROM scope() WHERE NOT Image"],
        permissions: [.machineState]
    ) { ctx in
        guard ctx.context.require(.machineState, for: "pe_dump") else { return .null }
        guard let pid = ctx.int("pid"), pid > 0, let base = ctx.int("base_offset"), base >= 0 else {
            ctx.context.logOnce(.error, "pe_dump: pid= and base_offset= are required")
            return .null
        }
        guard let memory = ProcessMemory(pid: pid) else {
            ctx.context.logOnce(.warning, "pe_dump: cannot open the memory of process \(pid): \(String(cString: strerror(errno)))")
            return .null
        }
        let image: [UInt8]
        do {
            image = try rebuild(from: memory, base: base, limit: Int(clamping: ctx.int("in_memory") ?? 0) > 0
                                ? min(maxImage, Int(clamping: ctx.int("in_memory") ?? 0)) : maxImage)
        } catch {
            ctx.context.logOnce(.warning, "pe_dump: process \(pid) at 0x\(String(base, radix: 16)): \(error)")
            return .null
        }
        if let limit = ctx.int("in_memory"), limit > 0 { return .string(bytes: image) }
        do {
            let folder = try PrivateFile.makeTemporaryFolder(prefix: "quarry-pe")
            ctx.context.atEnd { try? FileManager.default.removeItem(atPath: folder) }
            let path = folder + "/pid\(pid)-\(String(base, radix: 16)).exe"
            try PrivateFile.write(image, to: path)
            return .string(path)
        } catch {
            ctx.context.logOnce(.error, "pe_dump: \(error)")
            return .null
        }
    }

    /// Why an image could not be rebuilt.
    struct DumpError: Error, CustomStringConvertible {
        let description: String
    }

    /// The file-layout bytes of the PE mapped at `base` in `memory`, at most `limit` long.
    static func rebuild(from memory: any ParserSource, base: Int64, limit: Int) throws -> [UInt8] {
        let pe: PEFile
        do {
            pe = try PEFile(source: memory, base: base)
        } catch {
            throw DumpError(description: "no PE header (MZ … PE) is mapped there")
        }
        // SizeOfHeaders sits at the same place in PE32 and PE32+ optional headers.
        let sectionTableEnd = Int(pe.optionalHeaderOffset) + Int(pe.u16(pe.optionalHeaderOffset - 4) ?? 0) + pe.sections.count * 40
        let declaredHeaders = Int(pe.u32(pe.optionalHeaderOffset + 60) ?? 0)
        let headerSize = min(max(declaredHeaders, sectionTableEnd), 1 << 20)
        var end = headerSize
        for section in pe.sections where section.rawSize > 0 {
            end = max(end, Int(section.rawOffset) + Int(section.rawSize))
        }
        guard end <= limit else {
            throw DumpError(description: "the image would be \(end) bytes, more than the \(limit) allowed")
        }
        var image = [UInt8](repeating: 0, count: end)
        let header = memory.read(at: base, count: headerSize)
        image.replaceSubrange(0..<header.count, with: header)
        for section in pe.sections where section.rawSize > 0 {
            // Memory holds VirtualSize bytes (zero-filled past the raw data); the file holds SizeOfRawData.
            let mapped = section.virtualSize == 0 ? Int(section.rawSize) : min(Int(section.rawSize), Int(section.virtualSize))
            let bytes = memory.read(at: base + Int64(section.virtualAddress), count: mapped)
            let at = Int(section.rawOffset)
            image.replaceSubrange(at..<(at + bytes.count), with: bytes)
        }
        return image
    }
}

/// A process's address space as a parser input (`/proc/PID/mem`, read with pread; unmapped
/// ranges read as nothing).
final class ProcessMemory: ParserSource {
    private let fd: Int32

    init?(pid: Int64) {
        fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
    }

    deinit { close(fd) }

    var size: Int64? { nil }

    func read(at offset: Int64, count: Int) -> [UInt8] {
        guard offset >= 0, count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard n > 0 else { return [] }
        out.removeLast(count - n)
        return out
    }
}
