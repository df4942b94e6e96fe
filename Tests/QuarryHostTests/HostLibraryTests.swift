import Testing
import QuarryHost
import VQL

@Suite struct HostLibraryTests {
    @Test func declarationsHaveUniqueNames() {
        let names = HostLibrary.plugins.map(\.name)
        #expect(Set(names).count == names.count)
        let functions = HostLibrary.functions.map(\.name)
        #expect(Set(functions).count == functions.count)
    }

    @Test func everyDeclarationIsDocumented() {
        for plugin in HostLibrary.plugins {
            #expect(!plugin.summary.isEmpty && !plugin.examples.isEmpty, "\(plugin.name)")
        }
        for function in HostLibrary.functions {
            #expect(!function.summary.isEmpty && !function.examples.isEmpty, "\(function.name)")
        }
    }

    /// Every example runs without error; plugin examples that select * give every declared column.
    @Test(arguments: HostLibrary.plugins.flatMap { p in p.examples.map { (p.name, $0) } } + HostLibrary.functions.flatMap { f in f.examples.map { (f.name, $0) } })
    func examplesRun(name: String, example: String) throws {
        let (session, logger) = Host.session()
        _ = try session.run(example)
        #expect(!logger.messages.contains { $0.hasPrefix("ERROR") }, "\(name): \(logger.messages)")
    }

    @Test(arguments: ["pslist", "glob", "netstat", "connections", "info", "sysinfo", "users", "groups", "mounts", "interfaces", "proc_maps", "stat", "read_file", "parse_lines", "execve"])
    func starRowsHaveEveryDeclaredColumn(name: String) throws {
        let arguments: [String: String] = [
            "glob": "globs='/etc/*'", "proc_maps": "pid=getpid()", "stat": "filename='/etc/passwd'",
            "read_file": "filenames='/etc/passwd'", "parse_lines": "filename='/etc/passwd'", "execve": "argv=['true']",
        ]
        guard let declaration = HostLibrary.plugins.first(where: { $0.name == name }) else {
            Issue.record("no plugin \(name)")
            return
        }
        let rows = try Host.rows("SELECT * FROM \(name)(\(arguments[name] ?? "")) LIMIT 5")
        #expect(!rows.isEmpty, "\(name) gave no rows")
        for row in rows {
            for column in declaration.columns {
                #expect(Host.field(row, column.name) != nil, "\(name): missing \(column.name)")
            }
        }
    }
}
