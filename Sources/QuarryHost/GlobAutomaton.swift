import VQL

/// The matching half of glob(): all glob expressions flattened into one table of component
/// nodes, run as an NFA over path components. A walker (the file system's GlobWalker, or
/// AccessorGlobWalker for archives and images) feeds it the names it reads; the automaton says
/// which globs match and whether to descend.
final class GlobAutomaton {
    /// A position in one glob: a node of the flattened component table, plus the levels a `**`
    /// there may still descend.
    struct State: Hashable {
        var node: Int32
        var depth: Int32
    }

    /// One component of one glob, flattened so the per-entry matching does no reference counting.
    struct Node {
        enum Kind: UInt8 { case literal, pattern, recursive, final }
        var kind: Kind
        /// Index into `literals`/`tokens`, or the depth of a `**`.
        var payload: Int32
        /// The node after this one (the same glob's next component).
        var next: Int32
        var glob: Int32
    }

    let patterns: [GlobPattern]
    /// The Globs column value when every glob has the same source text (no per-row allocation).
    let singleSource: [String]?
    private let nodes: UnsafeMutableBufferPointer<Node>
    let literals: [[UInt8]]
    private let tokens: [[GlobPattern.Token]]
    /// The states before any name is read.
    private(set) var initial: [State] = []

    init(patterns: [GlobPattern]) {
        self.patterns = patterns
        let sources = Set(patterns.map(\.source))
        self.singleSource = sources.count == 1 ? Array(sources) : nil
        var table: [Node] = []
        var literals: [[UInt8]] = []
        var tokens: [[GlobPattern.Token]] = []
        var starts: [Int32] = []
        for (g, pattern) in patterns.enumerated() {
            starts.append(Int32(table.count))
            for component in pattern.components {
                let next = Int32(table.count + 1)
                switch component {
                case .literal(let name):
                    table.append(Node(kind: .literal, payload: Int32(literals.count), next: next, glob: Int32(g)))
                    literals.append(name)
                case .pattern(let t):
                    table.append(Node(kind: .pattern, payload: Int32(tokens.count), next: next, glob: Int32(g)))
                    tokens.append(t)
                case .recursive(let depth):
                    table.append(Node(kind: .recursive, payload: Int32(clamping: depth), next: next, glob: Int32(g)))
                }
            }
            table.append(Node(kind: .final, payload: 0, next: Int32(table.count), glob: Int32(g)))
        }
        self.nodes = UnsafeMutableBufferPointer<Node>.allocate(capacity: max(1, table.count))
        _ = self.nodes.initialize(from: table)
        self.literals = literals
        self.tokens = tokens
        var initial: [State] = []
        for g in patterns.indices where !patterns[g].components.isEmpty {
            addClosure(State(node: starts[g], depth: startDepth(starts[g])), into: &initial)
        }
        self.initial = initial
    }

    deinit { nodes.deallocate() }

    @inline(__always)
    func node(_ state: State) -> Node { nodes[Int(state.node)] }

    @inline(__always)
    private func startDepth(_ node: Int32) -> Int32 {
        let n = nodes[Int(node)]
        return n.kind == .recursive ? n.payload : 0
    }

    /// Adds a state and, for a recursive component, the states reached by it matching nothing.
    private func addClosure(_ state: State, into states: inout [State]) {
        let n = nodes[Int(state.node)]
        if n.kind == .recursive {
            if state.depth > 0 && !states.contains(state) { states.append(state) }
            // `**` may match no directory before the next component; a final `**` must match at least one entry.
            if nodes[Int(n.next)].kind != .final {
                addClosure(State(node: n.next, depth: startDepth(n.next)), into: &states)
            }
            return
        }
        if !states.contains(state) { states.append(state) }
    }

    @inline(__always)
    func isFinal(_ state: State) -> Bool { nodes[Int(state.node)].kind == .final }

    /// The literal name a state waits for, when it is a literal node.
    @inline(__always)
    func literal(_ state: State) -> [UInt8]? {
        let n = nodes[Int(state.node)]
        return n.kind == .literal ? literals[Int(n.payload)] : nil
    }

    /// The glob text a final state belongs to.
    func source(_ state: State) -> String { patterns[Int(nodes[Int(state.node)].glob)].source }

    /// The states an entry named `name` reaches from `states`.
    @inline(__always)
    func advance(_ states: [State], name: [UInt8], into next: inout [State]) {
        next.removeAll(keepingCapacity: true)
        for state in states {
            let n = nodes[Int(state.node)]
            switch n.kind {
            case .final: continue
            case .literal:
                if literals[Int(n.payload)] == name {
                    addClosure(State(node: n.next, depth: startDepth(n.next)), into: &next)
                }
            case .pattern:
                if GlobPattern.matches(tokens[Int(n.payload)], name) {
                    addClosure(State(node: n.next, depth: startDepth(n.next)), into: &next)
                }
            case .recursive:
                addClosure(State(node: state.node, depth: state.depth - 1), into: &next)
                let final = State(node: n.next, depth: 0)
                if isFinal(final) && !next.contains(final) { next.append(final) }
            }
        }
    }

    /// The Globs column for the final states in `states`.
    func sources(_ states: [State]) -> [String] {
        if let singleSource { return singleSource }
        var sources: [String] = []
        for state in states where isFinal(state) {
            let source = self.source(state)
            if !sources.contains(source) { sources.append(source) }
        }
        return sources
    }
}

/// One step of a glob walk: a row to hand out, or a directory still to read.
enum GlobWork<Pending> {
    case row(Value)
    case directory(Pending)
}

/// The pull loop both glob walkers share. Expanding a directory pushes, for each entry in name
/// order, its row and then (for a directory to descend into) the directory itself, reversed, so
/// the walk is depth-first in pre-order: an entry's subtree comes right after it, before its
/// next sibling, as Velociraptor's glob gives them.
protocol GlobExpansion: AnyObject {
    associatedtype Pending
    var stack: [GlobWork<Pending>] { get set }
    var context: QueryContext { get }
    func expand(_ pending: Pending)
}

extension GlobExpansion {
    func next() throws -> Value? {
        while let item = stack.popLast() {
            switch item {
            case .row(let row): return row
            case .directory(let pending):
                try context.cancellation.check()
                context.throttle?.pace()
                expand(pending)
            }
        }
        return nil
    }
}
