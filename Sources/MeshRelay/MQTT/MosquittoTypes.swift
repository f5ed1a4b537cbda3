import CMosquitto

/// The MQTT protocol version of a connection.
public enum MQTTProtocolVersion: Sendable, Hashable, CustomStringConvertible {
    /// MQTT 3.1.1 (OASIS 2014), protocol level 4.
    case v311
    /// MQTT 5.0 (OASIS 2019), protocol level 5.
    case v5

    /// The value of libmosquitto's `MOSQ_OPT_PROTOCOL_VERSION`.
    var optionValue: Int32 {
        switch self {
        case .v311: MQTT_PROTOCOL_V311
        case .v5: MQTT_PROTOCOL_V5
        }
    }

    public var description: String {
        switch self {
        case .v311: "MQTT 3.1.1"
        case .v5: "MQTT 5"
        }
    }
}

/// Which protocol version a client asks for.
public enum MQTTProtocolPreference: Sendable, Hashable {
    /// MQTT 5 only.
    case v5
    /// MQTT 3.1.1 only.
    case v311
    /// MQTT 5, and MQTT 3.1.1 from then on if the broker answers CONNACK "unsupported protocol version"
    /// (what an MQTT 3.1.1 broker must answer to a protocol level it does not know).
    case v5FallingBackToV311

    var initialVersion: MQTTProtocolVersion {
        switch self {
        case .v5, .v5FallingBackToV311: .v5
        case .v311: .v311
        }
    }
}

/// MQTT quality of service.
public enum MQTTQoS: Int32, Sendable, Hashable {
    case atMostOnce = 0
    case atLeastOnce = 1
    case exactlyOnce = 2
}

/// A failed libmosquitto call or a connection that ended with a libmosquitto error code.
public struct MosquittoError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `mosq_err_t` value.
    public let code: Int32
    /// What was attempted ("mosquitto_publish_v5", "connect", "network loop").
    public let operation: String
    /// libmosquitto's text for `code`, taken when the error happened (for `MOSQ_ERR_ERRNO` it depends on
    /// `errno` at that moment, so it cannot be recomputed later).
    public let message: String
    /// The last error libmosquitto logged before this error, if any ("OpenSSL Error[0]: … certificate verify failed").
    public let detail: String?

    init(code: Int32, operation: String, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.message = String(cString: mosquitto_strerror(code))
        self.detail = detail
    }

    public var description: String {
        var text = "\(self.operation): \(self.message) (mosquitto error \(self.code))"
        if let detail { text += "; \(detail)" }
        return text
    }

    /// Whether the error is a TLS failure (handshake, certificate verification, unreadable CA file). Also when
    /// the code is only "connection lost" but OpenSSL reported why: with TLS 1.3 a broker that rejects the
    /// client certificate does so after the handshake, with an alert ("certificate required").
    public var isTLSFailure: Bool {
        self.code == MOSQ_ERR_TLS.rawValue || self.code == MOSQ_ERR_TLS_HANDSHAKE.rawValue
            || self.detail?.hasPrefix("OpenSSL Error") == true
    }
}

/// A CONNACK that refused the connection, with the reason in MQTT 5 numbering (MQTT 3.1.1 return codes
/// are mapped: 1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86, 5 → 0x87).
public struct ConnectRefusal: Sendable, Hashable, CustomStringConvertible {
    public let reasonCode: Int32

    public init(reasonCode: Int32) { self.reasonCode = reasonCode }

    /// Maps what libmosquitto's on_connect reports for a connection of `version` to MQTT 5 numbering.
    init(libraryCode code: Int32, version: MQTTProtocolVersion) {
        guard version == .v311 else {
            self.reasonCode = code
            return
        }
        self.reasonCode =
            switch code {
            case 1: 0x84
            case 2: 0x85
            case 3: 0x88
            case 4: 0x86
            case 5: 0x87
            default: code
            }
    }

    public static let unsupportedProtocolVersion = ConnectRefusal(reasonCode: 0x84)
    public static let clientIdentifierNotValid = ConnectRefusal(reasonCode: 0x85)
    public static let badUsernameOrPassword = ConnectRefusal(reasonCode: 0x86)
    public static let notAuthorized = ConnectRefusal(reasonCode: 0x87)
    public static let serverUnavailable = ConnectRefusal(reasonCode: 0x88)

    /// Whether the broker rejected who we are (credentials or authorisation), as opposed to how we connected.
    public var isAuthenticationFailure: Bool {
        self == .badUsernameOrPassword || self == .notAuthorized || self.reasonCode == 0x8C  // bad authentication method
    }

    public var description: String {
        let reason = String(cString: mosquitto_reason_string(self.reasonCode))
        return "\(reason) (reason code 0x\(String(self.reasonCode, radix: 16)))"
    }
}

/// Why a client is not connected.
public enum MQTTConnectionFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broker answered CONNECT with a refusal: wrong credentials, not authorised, unsupported protocol.
    case refused(ConnectRefusal)
    /// The TLS handshake failed: a certificate not signed by the configured CA, a name mismatch, an expired
    /// certificate (or a clock that is not set yet), a missing client certificate. The string is OpenSSL's reason.
    case tls(String)
    /// No connection could be opened, or an open one broke: DNS, TCP refused or unreachable, keep-alive timeout.
    case network(MosquittoError)

    public var description: String {
        switch self {
        case .refused(let refusal): "MQTT broker refused the connection: \(refusal)"
        case .tls(let reason): "TLS handshake with the MQTT broker failed: \(reason)"
        case .network(let error): "MQTT connection failed: \(error)"
        }
    }
}

/// The connection a client has, as far as its network thread knows.
public enum MQTTConnectionState: Sendable, Hashable {
    /// Created, ``MosquittoClient/start()`` not called yet.
    case idle
    /// Opening the TCP/TLS connection or waiting for CONNACK (first attempt or a reconnect).
    case connecting
    /// CONNACK accepted the connection.
    case connected(MQTTConnectionInfo)
    /// Between attempts; `nil` when the connection was closed on purpose.
    case disconnected(MQTTConnectionFailure?)
    /// ``MosquittoClient/stop()`` has finished; the client cannot be started again.
    case stopped

    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }
}

/// What the CONNACK said.
public struct MQTTConnectionInfo: Sendable, Hashable {
    public var protocolVersion: MQTTProtocolVersion
    /// Whether the broker still had this client's session (persistent sessions only).
    public var sessionPresent: Bool

    public init(protocolVersion: MQTTProtocolVersion, sessionPresent: Bool) {
        self.protocolVersion = protocolVersion
        self.sessionPresent = sessionPresent
    }
}

/// How a QoS > 0 publish ended.
public enum MQTTPublishOutcome: Sendable, Hashable {
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived with a success reason code.
    case acknowledged
    /// The broker answered with an MQTT 5 reason code ≥ 0x80 (not authorised, quota exceeded, …).
    case refused(reasonCode: Int32)
    /// The client stopped before the broker answered.
    case abandoned
}

/// A message received on a subscription. Topic and payload are copies: libmosquitto frees its buffers as
/// soon as the callback returns.
public struct MQTTMessage: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool
    /// MQTT 5 Message Expiry Interval: the seconds of lifetime the broker says the message has left.
    public var messageExpiry: UInt32?
}
