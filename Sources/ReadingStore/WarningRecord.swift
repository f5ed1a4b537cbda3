public import KiezboxCore

extension MetaKey {
    /// The box's own warnings (JSON of ``KiezboxCore/WarningBook``).
    static let warnings = "warnings"
}

extension ReadingStore {
    /// Records the box's warnings: after a restart the warning service continues them with the same identifiers,
    /// and the portal reads them from here.
    public func setWarningBook(_ book: WarningBook) async throws {
        try await self.setMetaJSON(book, key: MetaKey.warnings)
    }

    /// The recorded warnings; empty when none were recorded (or a newer version's record no longer decodes).
    public func warningBook() throws -> WarningBook {
        try self.metaJSON(WarningBook.self, key: MetaKey.warnings) ?? WarningBook()
    }
}
