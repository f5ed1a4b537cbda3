import ArgumentParser
import Crypto
import EmergencyPortal

/// `kiezbox keys`: the civil-protection signing keys for official announcements.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create the signing key an authority uses for official announcements.",
        subcommands: [Generate.self, Public.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new Ed25519 signing key and print what boxes need to trust it.",
            discussion: """
                Run this on the authority's computer, not on a box. The private key goes to --out (mode 0600, \
                never overwritten); the [[authority]] table printed goes into the configuration of every box that \
                should show your announcements as official.
                """
        )

        @Option(name: .long, help: ArgumentHelp("Where to write the private key.", valueName: "file"))
        var out: String

        @Option(name: .customLong("key-id"), help: ArgumentHelp("Name for the key (default: its fingerprint).", valueName: "id"))
        var keyID: String?

        @Option(name: .long, help: ArgumentHelp("The authority's name as residents should see it.", valueName: "name"))
        var name: String?

        func validate() throws {
            if let keyID, !AnnouncementKey.isValidKeyID(keyID) {
                throw ValidationError("--key-id: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
            }
        }

        func run() throws {
            let privateKey = Curve25519.Signing.PrivateKey()
            let file = SigningKeyFile(keyID: self.keyID ?? AnnouncementKey.fingerprint(of: privateKey.publicKey), privateKey: privateKey)
            try file.save(to: self.out)
            print("""
                Wrote the private signing key \(file.keyID) to \(self.out) (readable only by you).
                Keep it secret and backed up: whoever holds it can publish official announcements.

                Add this to /etc/kiezbox/kiezbox.toml on every box that should trust it:

                """)
            print(file.authorityTable(name: self.name), terminator: "")
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the [[authority]] table of an existing signing key again."
        )

        @Option(name: .long, help: ArgumentHelp("The private key file from `kiezbox keys generate`.", valueName: "file"))
        var key: String

        @Option(name: .long, help: ArgumentHelp("The authority's name as residents should see it.", valueName: "name"))
        var name: String?

        func run() throws {
            print(try SigningKeyFile.read(from: self.key).authorityTable(name: self.name), terminator: "")
        }
    }
}
