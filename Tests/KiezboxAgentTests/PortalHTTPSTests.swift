import Crypto
import EmergencyPortal
import Foundation
import KiezboxTestSupport
import MeshRelay
import Testing

/// The authorities' channel, end to end: the daemon makes its certificate, `kiezbox status --json` and the MQTT
/// status publish the pin of its key, and curl fetches the full situation feed over real TLS on loopback with that
/// pin; a wrong pin fails, and the same token over plain HTTP is refused.
@Suite("Portal HTTPS for authorities, pinned by the published key", .timeLimit(.minutes(3)))
struct PortalHTTPSTests {
    static let token = "civil-protection-test-token-0123456789abcdef"

    func configuration(httpPort: Int, httpsPort: Int, brokerPort: Int) -> String {
        DaemonProcessTests.configuration + """

            [mqtt]
            host = "127.0.0.1"
            port = \(brokerPort)

            [portal]
            listen = "127.0.0.1"
            port = \(httpPort)
            https_port = \(httpsPort)

            [[authority]]
            name = "Lagedienst"
            token_sha256 = "\(AuthorityTokens.hash(token: Self.token))"
            """
    }

    @Test("curl --pinnedpubkey with the pin from `kiezbox status --json` gets the feed; a wrong pin fails; the token over plain HTTP gets 403")
    func pinnedFeed() async throws {
        try requireProgram("/usr/bin/curl", package: "curl")
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let data = directory + "/data"
                let (httpPort, httpsPort) = (try MosquittoBroker.freePort(), try MosquittoBroker.freePort())
                let config = directory + "/k.toml"
                try self.configuration(httpPort: httpPort, httpsPort: httpsPort, brokerPort: broker.port)
                    .write(toFile: config, atomically: true, encoding: .utf8)
                let subscriber = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/test-kiez/test-box/status")
                defer { Task { await subscriber.stop() } }
                let daemon = try KiezboxProcess(["run", "--config", config, "--data-dir", data], in: directory)
                defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
                try await waitUntil("the HTTPS side to listen") { daemon.stderr.contains("emergency portal listening for authorities") }

                let status = try await runProgram([kiezboxBinary, "status", "--json", "--config", config, "--data-dir", data], in: directory)
                #expect(status.status == 0, "\(status.all)")
                let report = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
                let https = try #require(report["portalHTTPS"] as? [String: Any], "\(status.output)")
                #expect(https["port"] as? Int == httpsPort)
                let pin = try #require(https["pin"] as? String)
                // The same pin in the log at start, in the human status and in the retained MQTT status.
                #expect(daemon.stderr.contains("sha256//\(pin)"), "\(daemon.stderr)")
                let human = try await runProgram([kiezboxBinary, "status", "--config", config, "--data-dir", data], in: directory)
                #expect(human.output.contains("https       port \(httpsPort), key pin sha256//\(pin)"), "\(human.output)")
                let announced = try await subscriber.waitForMessages { message in
                    (try? JSONDecoder().decode(StatusMessage.self, from: Data(message.payload)))?.state == .online
                }
                let statusMessage = try JSONDecoder().decode(StatusMessage.self, from: Data(try #require(announced.last).payload))
                #expect(statusMessage.portalHTTPS == StatusMessage.PortalHTTPS(port: httpsPort, pin: pin))

                let url = "https://127.0.0.1:\(httpsPort)/api/v1/situation.geojson"
                func curl(_ arguments: [String]) async throws -> ProgramRun {
                    try await runProgram(["/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"] + arguments, in: directory)
                }
                let bearer = ["-H", "Authorization: Bearer \(Self.token)"]
                // -k: the certificate is self-signed; the pin is what is checked.
                let pinned = try await curl(["-k", "--pinnedpubkey", "sha256//\(pin)"] + bearer + [url])
                #expect(pinned.status == 0, "\(pinned.all)")
                #expect(pinned.output == "200", "\(pinned.all)")
                let wrongToken = try await curl(["-k", "--pinnedpubkey", "sha256//\(pin)", "-H", "Authorization: Bearer wrong", url])
                #expect(wrongToken.output == "401", "\(wrongToken.all)")

                let otherKey = Data(SHA256.hash(data: P256.Signing.PrivateKey().publicKey.derRepresentation)).base64EncodedString()
                let wrongPin = try await curl(["-k", "--pinnedpubkey", "sha256//\(otherKey)"] + bearer + [url])
                #expect(wrongPin.status == 90, "curl exit \(wrongPin.status): \(wrongPin.all)")  // CURLE_SSL_PINNEDPUBKEYNOTMATCH
                #expect(wrongPin.output == "000", "\(wrongPin.all)")

                let plain = try await curl(bearer + ["http://127.0.0.1:\(httpPort)/api/v1/situation.geojson"])
                #expect(plain.output == "403", "\(plain.all)")
                #expect(daemon.stderr.contains("crossed the network in clear"), "\(daemon.stderr)")

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")

                // A restart keeps the key: the pin authorities hold stays valid.
                let again = try KiezboxProcess(["run", "--config", config, "--data-dir", data], in: directory)
                defer { if again.process.isRunning { again.signal(SIGKILL) } }
                try await waitUntil("the HTTPS side to listen again") { again.stderr.contains("emergency portal listening for authorities") }
                #expect(again.stderr.contains("sha256//\(pin)"), "\(again.stderr)")
                #expect(try await curl(["-k", "--pinnedpubkey", "sha256//\(pin)"] + bearer + [url]).output == "200")
                again.signal(SIGTERM)
                #expect(try await again.waitForExit() == 0, "\(again.stderr)")
            }
        }
    }
}
