import ArgumentParser
import EmergencyPortal
import Foundation

/// `kiezbox token generate`: makes a bearer token for a civil-protection authority and the configuration lines
/// that let it read the full situation feed.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make bearer tokens for authorities that read the situation feed.",
        subcommands: [Generate.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new token once, and the [[authority]] lines with its SHA-256 for the configuration.",
            discussion: """
                The box stores only the token's SHA-256, so the token cannot be shown again: hand it to the \
                authority now (it sends `Authorization: Bearer <token>`, over HTTPS only, to the key pin the box \
                publishes: docs/portal.md). To revoke it, delete its lines.
                """
        )

        @Option(name: .long, help: ArgumentHelp("The authority's name, as the feed reports who asked.", valueName: "name"))
        var name: String

        func validate() throws {
            guard !self.name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--name must not be empty.")
            }
        }

        func run() {
            let token = AuthorityTokens.generateToken()
            print("Token for \(self.name) (shown only now; give it to the authority):")
            print("")
            print("    \(token)")
            print("")
            print("Add to the configuration:")
            print("")
            print("[[authority]]")
            print("name = \(tomlBasicString(self.name))")
            print("token_sha256 = \"\(AuthorityTokens.hash(token: token))\"")
        }
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped, so any name pastes into the file as is.
func tomlBasicString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}
