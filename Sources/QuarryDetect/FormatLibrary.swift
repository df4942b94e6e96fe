import VQL

/// The format parsers of this module (binary profiles, certificates, executables, databases,
/// logs), listed explicitly; `DetectLibrary` includes them.
public enum FormatLibrary {
    public static var plugins: [PluginDeclaration] {
        [LevelDBPlugin.plugin, PlistParsers.plugin, EFIVariablesPlugin.plugin, AuditdPlugin.plugin, JournalPlugin.plugin]
    }
    public static var functions: [FunctionDeclaration] {
        [ParseBinaryFunction.function, ParsePEFunction.function, PEDump.function, PlistParsers.function, YaraLint.function] + CertificateFunctions.all
    }
}
