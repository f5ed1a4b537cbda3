/// A point on the earth, WGS 84.
public struct GeoPosition: Sendable, Hashable, Codable {
    public var latitude: Double
    public var longitude: Double
    /// Metres above mean sea level, when known.
    public var altitude: Double?

    public init(latitude: Double, longitude: Double, altitude: Double? = nil) {
        self.latitude = latitude
        self.longitude = longitude
        self.altitude = altitude
    }

    /// Whether the coordinates are on the earth at all.
    public var isValid: Bool {
        (-90.0...90.0).contains(self.latitude) && (-180.0...180.0).contains(self.longitude)
    }
}

/// Who this box is: what residents, neighbours and civil protection call it and where it stands.
public struct BoxIdentity: Sendable, Hashable, Codable {
    /// The district (Bezirk or Kiez) the box belongs to, as used in topics: "friedrichshain-kreuzberg".
    public var district: String
    /// The box's id within its district, as used in topics: "wrangelkiez-01".
    public var boxID: String
    /// A human name: "Kiezbox Wrangelstraße".
    public var name: String
    public var position: GeoPosition?

    public init(district: String, boxID: String, name: String, position: GeoPosition? = nil) {
        self.district = district
        self.boxID = boxID
        self.name = name
        self.position = position
    }
}

/// The operating mode every service adapts to.
public enum Mode: String, Sendable, Hashable, Codable, CaseIterable {
    /// A resident is working on the box: sampling continues, nothing is announced.
    case maintenance
    /// Everyday operation: sample, buffer, relay.
    case normal
    /// Blackout or declared emergency: emergency Wi-Fi, portal, situation feed.
    case crisis
}
