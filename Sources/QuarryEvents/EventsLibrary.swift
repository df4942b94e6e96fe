import VQL

/// The events module's registry list: every never-ending (event) plugin and the process
/// tracker's functions, explicitly. `quarry` adds these after the host library (the tracker's
/// names replace the host's /proc-only forms).
public enum EventsLibrary {
    public static var plugins: [PluginDeclaration] {
        WatchEBPF.plugins
    }
    public static var functions: [FunctionDeclaration] {
        []
    }
}
