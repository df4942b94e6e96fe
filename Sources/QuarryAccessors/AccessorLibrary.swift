import VQL

/// The container module's registry list: accessors that read inside archives and images (zip,
/// zip_nocase, gzip, bzip2, raw_ext4, ext4) and the archive functions (unzip, gunzip,
/// compress). These parse hostile bytes, so they live apart from the live-host plugins and
/// reach their containers only through other accessors (delegates).
public enum AccessorLibrary {
    public static var accessors: [any Accessor] {
        [ZipAccessor(), ZipAccessor(caseInsensitive: true), CompressedAccessor(.gzip), CompressedAccessor(.bzip2),
         Ext4Accessor(live: false), Ext4Accessor(live: true)]
    }
    public static var plugins: [PluginDeclaration] { ArchiveFunctions.plugins }
    public static var functions: [FunctionDeclaration] { ArchiveFunctions.functions + [RemapFunction.declaration] }
}
