extension ReadingStore {
    /// The retained topics the Home Assistant integration has published and not yet deleted: its discovery
    /// configs and state topics. Kept across restarts, so that a box whose integration is switched off can
    /// delete them (an empty retained payload) and Home Assistant forgets the entities.
    public func homeAssistantTopics() throws -> [String] {
        try self.metaJSON([String].self, key: MetaKey.homeAssistantTopics) ?? []
    }

    /// Replaces the remembered Home Assistant topics; an empty list forgets them.
    public func setHomeAssistantTopics(_ topics: [String]) async throws {
        try await self.setMetaJSON(topics.isEmpty ? nil : topics, key: MetaKey.homeAssistantTopics)
    }
}
