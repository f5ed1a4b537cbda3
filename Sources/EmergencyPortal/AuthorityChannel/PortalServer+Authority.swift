import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// How a request reached the portal.
public enum PortalTransport: String, Sendable, Hashable {
    /// Plain HTTP: phones on the Wi-Fi, the captive-portal probes. Anyone on the network can read it.
    case http
    /// HTTPS with the box's own certificate (``PortalCertificate``): where authorities send their tokens.
    case https
}

/// The bearer token of a request to the authority side, checked.
enum BearerTokenCheck {
    /// No `Authorization` header.
    case absent
    /// A configured authority's token, over a channel where tokens are accepted.
    case authority(name: String)
    /// Refused: the response says why (403 Wi-Fi or plain HTTP, 429 wait, 401 wrong token).
    case refused(Response)
}

extension PortalServer {
    /// The portal over HTTPS with `certificate`, on the HTTP side's address and ``PortalSettings/httpsPort``
    /// (`port` overrides it; 0 lets the system pick). Same routes as HTTP; bearer tokens are accepted here.
    public func httpsApplication(
        certificate: PortalCertificate, port: Int? = nil, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certificate.certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem))
        )
        tls.minimumTLSVersion = .tlsv12
        return Application(
            router: self.router(transport: .https),
            // The same admission as the HTTP side: one budget of connections (file descriptors) and the same timeouts.
            server: try .tls(.guardedHTTP1(admission: self.admission), tlsConfiguration: tls),
            configuration: .init(address: .hostname(self.settings.bindAddress, port: port ?? self.settings.httpsPort ?? 0), serverName: "kiezbox"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: self.logger
        )
    }

    /// Checks a request's bearer token for the authority side, in this order: the Wi-Fi (closed unless configured),
    /// the channel (plain HTTP refused unless configured), the address's wait after wrong tokens, the token itself.
    /// Each refusal comes before the token is compared, so none of them says anything about the token.
    func checkBearerToken(_ request: Request, context: PortalRequestContext) -> BearerTokenCheck {
        guard let header = request.headers[.authorization] else { return .absent }
        if self.authoritySideClosed(to: context) { return .refused(Self.authoritySideRefusal) }
        let now = self.now()
        let source = Self.guessingSource(context.client)
        if !self.acceptsTokens(over: context) {
            // Compared only to say in the log whether a real token is now known to the network; the answer is the
            // same either way.
            if case .authority(let name) = self.authorities.authorize(authorizationHeader: header) {
                self.logger.warning(
                    "an authority's token crossed the network in clear (plain HTTP) and was refused; replace it (kiezbox token generate) and use HTTPS",
                    metadata: ["authority": "\(name)", "client": "\(context.client)"]
                )
            } else {
                self.attempts.recordFailure(from: source, at: now)
            }
            return .refused(self.plainHTTPRefusal)
        }
        if case .wait(let seconds) = self.attempts.admission(for: source, at: now) {
            var response = Self.response(429, "text/plain; charset=utf-8", text: "too many wrong tokens from this address; try again in \(seconds) s\n")
            response.headers[.retryAfter] = "\(seconds)"
            return .refused(response)
        }
        switch self.authorities.authorize(authorizationHeader: header) {
        case .authority(let name):
            self.attempts.recordSuccess(from: source)
            return .authority(name: name)
        case .public:
            self.attempts.recordFailure(from: source, at: now)
            var response = Self.response(401, "text/plain; charset=utf-8", text: "unknown or malformed bearer token\n")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"kiezbox\", error=\"invalid_token\""
            return .refused(response)
        }
    }

    /// What wrong tokens are counted under: the client's IPv4 address, or the /64 of its IPv6 address (one machine
    /// can take any address of its /64, so counting per address would give it 2^64 fresh starts).
    static func guessingSource(_ client: String) -> String {
        guard let canonical = canonicalIPAddress(client) else { return client }
        var address = in6_addr()
        guard canonical.contains(":"), inet_pton(AF_INET6, canonical, &address) == 1 else { return canonical }
        let prefix = withUnsafeBytes(of: &address) { Array($0.prefix(8)) }
        return stride(from: 0, to: 8, by: 2).map { String(UInt16(prefix[$0]) << 8 | UInt16(prefix[$0 + 1]), radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Whether a bearer token may arrive over this request's channel (``PortalSettings/tokensOverPlainHTTP``).
    func acceptsTokens(over context: PortalRequestContext) -> Bool {
        switch (context.transport, self.settings.tokensOverPlainHTTP) {
        case (.https, _), (.http, .allow): return true
        case (.http, .refuse): return false
        case (.http, .loopback):
            guard let client = context.remoteAddress?.ipAddress.flatMap(canonicalIPAddress) else { return false }
            return client == "::1" || client.hasPrefix("127.")
        }
    }

    /// 403 for a token over plain HTTP, with where to go instead.
    var plainHTTPRefusal: Response {
        let https = self.settings.httpsPort.map { "https://<this box>:\($0)/ (pin the key: see `kiezbox status`, docs/portal.md)" }
        return Self.response(
            403, "text/plain; charset=utf-8",
            text: "bearer tokens are not accepted over plain HTTP: anyone on this network can read them. "
                + (https.map { "Use \($0)" } ?? "This box serves no HTTPS; set [portal] https_port") + "\n"
        )
    }
}
