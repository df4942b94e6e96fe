import VQL

/// glob() over any accessor that can list directories (zip members, ext4 images, file_nocase):
/// the same automaton as the file system's GlobWalker, fed from Accessor.list. Entries are
/// visited in name order, as Velociraptor does. A directory is listed at most once per walk
/// when the accessor gives directories an identity (an inode), so a crafted image whose
/// directories contain themselves or each other cannot make the walk loop or explode.
final class AccessorGlobWalker: GlobExpansion {
    typealias State = GlobAutomaton.State

    struct Pending {
        var directory: OSPath
        var states: [State]
        var depth: Int
    }

    let automaton: GlobAutomaton
    let accessor: any Accessor
    let scope: AccessorScope
    let ctx: CallContext
    let context: QueryContext
    let caseInsensitive: Bool
    let callback: Lambda?
    var stack: [GlobWork<Pending>] = []
    private var listed = Set<Int64>()
    /// Directories deeper than this are not entered (a bound for accessors without identities).
    static let maximumDepth = 256

    init(patterns: [GlobPattern], root: OSPath, accessor: any Accessor, ctx: CallContext, caseInsensitive: Bool, callback: Lambda?) {
        self.automaton = GlobAutomaton(patterns: patterns)
        self.accessor = accessor
        self.scope = ctx.accessorScope
        self.ctx = ctx
        self.context = ctx.context
        self.caseInsensitive = caseInsensitive
        self.callback = callback
        if !automaton.initial.isEmpty { stack.append(.directory(Pending(directory: root, states: automaton.initial, depth: 0))) }
    }


    func expand(_ pending: Pending) {
        let live = pending.states.filter { !automaton.isFinal($0) }
        guard !live.isEmpty, pending.depth < AccessorGlobWalker.maximumDepth else { return }
        let entries: [FileInfo]
        do {
            entries = try accessor.list(pending.directory, in: scope).sorted { $0.name.lexicographicallyPrecedes($1.name) }
        } catch let error as AccessorError where error.isNotFound {
            return
        } catch {
            ctx.context.logOnce(.warning, "glob: \(PathValues.display(pending.directory)): \(error)")
            return
        }
        var next: [State] = []
        var work: [GlobWork<Pending>] = []
        for entry in entries {
            let name = caseInsensitive ? entry.name.lowercasedASCII : entry.name
            automaton.advance(live, name: name, into: &next)
            if next.isEmpty { continue }
            var matched = false
            var descend = false
            for state in next {
                if automaton.isFinal(state) { matched = true } else { descend = true }
            }
            if matched { work.append(.row(.object(FileInfoRow(entry, globs: automaton.sources(next))))) }
            guard descend && entry.isDirectory else { continue }
            if let identity = AccessorGlobWalker.identity(entry), !listed.insert(identity).inserted {
                ctx.context.logOnce(.warning, "glob: \(PathValues.display(entry.path)): directory already visited (a loop in the directory tree), not descending")
                continue
            }
            if let callback, !callback.call([.object(FileInfoRow(entry))], in: ctx.env).isTruthy { continue }
            work.append(.directory(Pending(directory: entry.path, states: next.filter { !automaton.isFinal($0) }, depth: pending.depth + 1)))
        }
        stack.append(contentsOf: work.reversed())
    }

    /// A directory's identity when the accessor gives one (Sys.Inode).
    static func identity(_ info: FileInfo) -> Int64? {
        if case .dict(let sys) = info.sys, let inode = sys["Inode"]?.intValue {
            return inode &* 1_000_003 &+ (sys["Device"]?.intValue ?? 0)
        }
        return nil
    }
}
