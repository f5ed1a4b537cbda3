import ArgumentParser
import EmergencyPortal
import Foundation

extension AnnounceCommand {
    /// `kiezbox announce downlink`: a signed crisis command for the boxes' LoRaWAN downlink.
    struct Downlink: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a crisis declaration or its end as LoRaWAN downlinks, ready to queue in The Things Network.",
            discussion: """
                Prints the body for TTN's downlink queue on standard output and each frame's port, hex and base64 on \
                standard error. Example:
                  kiezbox announce downlink declare --key bezirksamt.key --district xhain --valid-for 12h > down.json
                  mosquitto_pub -h eu1.cloud.thethings.network -p 8883 --capath /etc/ssl/certs \\
                    -u "$APP@ttn" -P "$API_KEY" -t "v3/$APP@ttn/devices/$DEVICE/down/push" -f down.json

                By default the command is split into two downlinks of at most 51 bytes, which reach a box at every \
                data rate; --single sends it as one downlink of 81 bytes, which needs DR3 or faster. Each downlink \
                counts against TTN's 10 a day per device. A box accepts a command only if it is newer than the last \
                one it accepted from your key: to send two in the same second, give the second a higher --sequence.
                """
        )

        enum Action: String, ExpressibleByArgument, CaseIterable {
            case declare, end
        }

        @Argument(help: ArgumentHelp("declare (a crisis) or end (the crisis you declared by downlink).", valueName: "action"))
        var action: Action

        @Option(name: .long, help: ArgumentHelp("The private key file from `kiezbox keys generate`.", valueName: "file"))
        var key: String

        @Option(name: .long, help: ArgumentHelp("The district whose boxes follow it (default: every district).", valueName: "district"))
        var district: String = AnnouncementPayload.allDistricts

        @Option(
            name: .customLong("valid-for"),
            help: ArgumentHelp(
                "How long it is valid (\"30m\", \"12h\", at most 14d); a declaration's crisis lasts this long unless ended.",
                valueName: "duration"))
        var validFor: String

        @Option(name: .long, help: ArgumentHelp("Orders commands issued in the same second (0-255).", valueName: "n"))
        var sequence: UInt8 = 0

        @Option(name: .customLong("issued-at"), help: ArgumentHelp("Issue time (default: now), ISO 8601 UTC.", valueName: "time"))
        var issuedAt: String?

        @Flag(name: .long, help: "One downlink of 81 bytes (DR3 or faster) instead of two of at most 51.")
        var single = false

        func run() throws {
            guard let duration = parseDuration(self.validFor) else {
                throw ValidationError("--valid-for: a duration like 30m, 12h or 2d")
            }
            let file = try SigningKeyFile.read(from: self.key)
            let signer = AnnouncementSigner(keyID: file.keyID, privateKey: file.privateKey)
            let command: CrisisCommand
            do {
                command = try CrisisCommand(
                    action: self.action == .declare ? .declareCrisis : .endCrisis, district: self.district,
                    issuedAt: try Sign.issueTime(self.issuedAt), validFor: TimeInterval(duration.components.seconds),
                    sequence: self.sequence, keyTag: signer.crisisCommandKeyTag)
            } catch {
                throw ValidationError("the command is not valid: \(error)")
            }
            let signed = try signer.sign(command)
            let frames: [(port: UInt8, payload: [UInt8])] =
                self.single
                ? [(CrisisDownlinkReceiver.commandPort, signed.bytes)]
                : signed.fragments().map { (CrisisDownlinkReceiver.fragmentPort, $0) }
            FileHandle.standardOutput.write(Self.ttnDownlinkBody(frames) + Data("\n".utf8))
            var summary = "signed \"\(command.action)\" with key \(file.keyID) for "
                + (self.district == AnnouncementPayload.allDistricts ? "every district" : "district \(self.district)")
                + ", valid until \(command.validUntil.formatted(.iso8601)): \(frames.count) downlink(s)\n"
            for (port, payload) in frames {
                summary += "  FPort \(port), \(payload.count) bytes\n    hex    \(payload.map { String(format: "%02X", $0) }.joined())\n"
                    + "    base64 \(Data(payload).base64EncodedString())\n"
            }
            FileHandle.standardError.write(Data(summary.utf8))
        }

        /// The body TTN's `down/push` (MQTT) or downlink queue API takes: every frame, in order.
        static func ttnDownlinkBody(_ frames: [(port: UInt8, payload: [UInt8])]) -> Data {
            struct Frame: Encodable {
                var f_port: Int
                var frm_payload: String
                var priority = "NORMAL"
            }
            struct Body: Encodable {
                var downlinks: [Frame]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = Body(downlinks: frames.map { Frame(f_port: Int($0.port), frm_payload: Data($0.payload).base64EncodedString()) })
            // Integers and strings: encoding cannot fail.
            return (try? encoder.encode(body)) ?? Data()
        }
    }
}
