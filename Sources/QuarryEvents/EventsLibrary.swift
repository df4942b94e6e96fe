import VQL

/// The events module's registry list: every never-ending (event) plugin and the process
/// tracker's functions, explicitly. `quarry` adds these after the host library.
public enum EventsLibrary {
    public static var plugins: [PluginDeclaration] {
        WatchEBPF.plugins + TrackerFunctions.plugins + WatchFiles.plugins + [WatchJournald.plugin] + WatchAudit.plugins + [Fifo.plugin]
    }
    public static var functions: [FunctionDeclaration] {
        TrackerFunctions.functions
    }
}
