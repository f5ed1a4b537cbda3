import ArgumentParser
import EmergencyPortal
import Foundation

/// `kiezbox announce`: official announcements, as an authority writes them.
struct AnnounceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "announce",
        abstract: "Sign official announcements for the boxes.",
        subcommands: [Sign.self, Downlink.self]
    )

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign an announcement and print it as JSON, ready to post to a box.",
            discussion: """
                Example:
                  kiezbox announce sign --key bezirksamt.key --id stromausfall-1 --severity severe \\
                    --headline de="Stromausfall im Kiez" --headline en="Power cut in the neighbourhood" \\
                    --body de="Trinkwasser am Leuchtturm Wrangelstraße." --expires 6h > announcement.json
                  curl -k --pinnedpubkey "sha256//$PIN" -H "Authorization: Bearer $TOKEN" \\
                    --data-binary @announcement.json https://<box>:8443/api/v1/announcements

                $PIN is the box's key pin, from its MQTT status or `kiezbox status` on the box (docs/portal.md); \
                tokens are refused over plain HTTP.

                To correct, extend or end an announcement early, sign it again with the same --id: the newer \
                version replaces the older one on every box (to end it, give a short --expires such as 1m).
                """
        )

        @Option(name: .long, help: ArgumentHelp("The private key file from `kiezbox keys generate`.", valueName: "file"))
        var key: String

        @Option(name: .customLong("key-id"), help: ArgumentHelp("Override the key id stored in the key file.", valueName: "id"))
        var keyID: String?

        @Option(name: .long, help: ArgumentHelp("Your id for the announcement; sign again with the same id to update it.", valueName: "id"))
        var id: String

        @Option(
            name: .long,
            help: ArgumentHelp(
                "How serious: \(AnnouncementSeverity.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "level"))
        var severity: String

        @Option(name: .long, help: ArgumentHelp("Headline in one language, e.g. de=\"Stromausfall\"; repeat per language.", valueName: "lang=text"))
        var headline: [String] = []

        @Option(name: .long, help: ArgumentHelp("Text in one language, e.g. en=\"…\"; repeat per language.", valueName: "lang=text"))
        var body: [String] = []

        @Option(
            name: .long,
            help: ArgumentHelp("How long it is valid (\"6h\", \"2d\", at most 14d) or until when (\"2026-09-21T18:00:00Z\").", valueName: "when"))
        var expires: String

        @Option(name: .long, help: ArgumentHelp("The district whose boxes show it (default: every district).", valueName: "district"))
        var district: String = AnnouncementPayload.allDistricts

        @Flag(name: .long, help: "Declare a crisis: while the announcement is valid, the boxes go into crisis mode (emergency Wi-Fi, crisis banner).")
        var crisis = false

        @Option(
            name: .customLong("issued-at"),
            help: ArgumentHelp("Issue time (default: now), ISO 8601 UTC.", valueName: "time"))
        var issuedAt: String?

        func run() throws {
            guard let severity = AnnouncementSeverity(rawValue: self.severity.lowercased()) else {
                throw ValidationError(
                    "--severity: one of \(AnnouncementSeverity.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(self.severity)\"")
            }
            guard !self.headline.isEmpty else { throw ValidationError("--headline: give at least one, e.g. --headline de=\"Stromausfall\"") }
            let issuedAt = try Self.issueTime(self.issuedAt)
            let expiresAt: Date
            if let duration = parseDuration(self.expires) {
                expiresAt = issuedAt.addingTimeInterval(TimeInterval(duration.components.seconds))
            } else if let date = Self.parseTime(self.expires) {
                expiresAt = date
            } else {
                throw ValidationError("--expires: a duration like 6h or 2d, or an ISO 8601 UTC time like 2026-09-21T18:00:00Z")
            }
            let payload = AnnouncementPayload(
                id: self.id, district: self.district, issuedAt: issuedAt, expiresAt: expiresAt, severity: severity,
                headline: try Self.texts(self.headline, option: "headline"), body: try Self.texts(self.body, option: "body"),
                crisis: self.crisis ? true : nil)
            do {
                try payload.validate()
            } catch {
                throw ValidationError("the announcement is not valid: \(error)")
            }
            let file = try SigningKeyFile.read(from: self.key)
            let keyID = self.keyID ?? file.keyID
            guard AnnouncementKey.isValidKeyID(keyID) else { throw ValidationError("--key-id: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'") }
            let envelope = try AnnouncementSigner(keyID: keyID, privateKey: file.privateKey).sign(payload)
            FileHandle.standardOutput.write(envelope.json() + Data("\n".utf8))
            let summary = "signed \"\(payload.id)\" (\(severity.rawValue)\(self.crisis ? ", declaring a crisis" : "")) with key \(keyID) for "
                + (payload.district == AnnouncementPayload.allDistricts ? "every district" : "district \(payload.district)")
                + ", valid until \(expiresAt.formatted(.iso8601))\n"
            FileHandle.standardError.write(Data(summary.utf8))
        }

        /// "de=Stromausfall" pairs as a dictionary; a language given twice is a mistake, not an override.
        static func texts(_ pairs: [String], option: String) throws -> [String: String] {
            var texts: [String: String] = [:]
            for pair in pairs {
                guard let equals = pair.firstIndex(of: "=") else {
                    throw ValidationError("--\(option) \"\(pair)\": write it as language=text, e.g. de=\"…\"")
                }
                let language = pair[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                guard texts[language] == nil else { throw ValidationError("--\(option): language \"\(language)\" given twice") }
                texts[language] = String(pair[pair.index(after: equals)...])
            }
            return texts
        }

        static func parseTime(_ text: String) -> Date? {
            try? Date(text, strategy: .iso8601)
        }

        /// The `--issued-at` time, or now. Whole seconds: what is signed carries seconds, and the signature must
        /// cover what is shown.
        static func issueTime(_ text: String?) throws -> Date {
            guard let text else { return Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)) }
            guard let date = Self.parseTime(text) else { throw ValidationError("--issued-at: an ISO 8601 UTC time like 2026-09-21T10:00:00Z") }
            return date
        }
    }
}
