import VQL

/// The host module's registry list: every plugin and function over the live Linux host,
/// explicitly. `quarry` adds these after the language core (`info()` replaces the core one).
public enum HostLibrary {
    public static var plugins: [PluginDeclaration] {
        [GlobPlugin.plugin] + FileFunctions.plugins + Parsers.plugins + Processes.plugins + Sockets.plugins + Network.plugins
            + SystemInfo.plugins + Users.plugins + Execve.plugins + LoginRecords.plugins + WriterPlugins.plugins
            + FileWrites.plugins + Filesystems.plugins + Profiling.plugins
    }
    public static var functions: [FunctionDeclaration] {
        FileFunctions.functions + Parsers.functions + Hashing.functions + Processes.functions + Network.functions + SystemInfo.functions
            + HostFunctions.functions + TempFiles.functions + FileWrites.functions + HostControl.functions + TraceFunction.functions + Syslog.functions
            + ShellSessions.functions
    }
    /// The live host's accessors: file, auto, file_nocase, raw_file and process.
    public static var accessors: [any Accessor] { FileAccessor.all + [ProcessAccessor()] }
}
