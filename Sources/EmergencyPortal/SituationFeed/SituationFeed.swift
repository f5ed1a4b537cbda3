import Foundation
import KiezboxCore
import ReadingStore

/// The situation feed civil protection pulls into its maps: an RFC 7946 GeoJSON FeatureCollection of this box,
/// its neighbours, the configured help points, the box's own weather warnings and, for authorities, the open
/// bulletin posts.
///
/// A pure function of the snapshot, so the route only authorizes, snapshots and calls ``geoJSON(_:access:)``.
public enum SituationFeed {
    /// The registered media type of GeoJSON (RFC 7946 §12).
    public static let mediaType = "application/geo+json"

    /// The feed as UTF-8 JSON.
    ///
    /// - Positions are `[longitude, latitude]`, rounded to 6 decimals (about 10 cm, RFC 7946 §11.2). The box's
    ///   altitude is above mean sea level, not the WGS 84 ellipsoid height RFC 7946 positions carry, so it goes
    ///   into the `altitude_msl_m` property instead of a third coordinate.
    /// - A box or place without a valid position has `"geometry": null` (RFC 7946 §3.2) rather than an invented
    ///   point.
    /// - Bulletin posts have no position of their own: with ``FeedAccess/authority(name:)`` each open post is a
    ///   feature at the position of the box it was typed on (a relayed post's origin box, when the neighbour
    ///   table knows where it is; else this box), `position_of` saying which (`origin_box` or `this_box`); with
    ///   ``FeedAccess/public`` only `bulletin_counts` on this box's feature say how many there are, without any
    ///   text or place.
    /// - The box's own heat and heavy-rain warnings (docs/warnings.md), active and recently ended, are features at
    ///   its position for everyone (a warning is public): hazard, level, severity, the latest message's CAP
    ///   `msg_type` and identifier, and `cap`, the path of that message's CAP alert on this box.
    /// - Feature ids are stable across requests: `box:<district>/<box>`, `help_point:<district>/<box>/<n>`,
    ///   `warning:<district>/<box>/<hazard>-<start>`, `post:<district>/<box>/<post id>`.
    /// - Posts come a page at a time (`page`; without one, the snapshot's newest posts), help requests first and
    ///   oldest first; a `next` member names the next page when there is one.
    public static func geoJSON(_ snapshot: PortalSnapshot, access: FeedAccess, page: BulletinFeedPage? = nil) -> Data {
        var features = [boxFeature(snapshot)]
        features += snapshot.neighbours.map { neighbourFeature($0, now: snapshot.now) }
        features += snapshot.helpPoints.enumerated().map { helpPointFeature($1, number: $0 + 1, of: snapshot.identity) }
        features += snapshot.warnings.warnings.compactMap { warningFeature($0, of: snapshot.identity) }
        var members: [String: JSONValue] = [
            "type": .string("FeatureCollection"),
            "generated": .string(timestamp(snapshot.now)),
        ]
        if access.seesPostText {
            features += (page?.posts ?? snapshot.bulletin).map { postFeature($0, snapshot: snapshot) }
            // A foreign member (RFC 7946 §6.1): where the rest of the posts are.
            if let next = page?.next { members["next"] = .string("\(path)?after=\(next.queryValue)") }
        }
        members["features"] = .array(features)
        return JSONValue.object(members).encoded()
    }

    /// Where the portal serves the feed.
    public static let path = "/api/v1/situation.geojson"

    private static func boxFeature(_ snapshot: PortalSnapshot) -> JSONValue {
        let identity = snapshot.identity
        let power = snapshot.power
        var properties = identityProperties(identity)
        properties["feature"] = .string("box")
        properties["this_box"] = .bool(true)
        properties["mode"] = .string(snapshot.mode.rawValue)
        properties["updated"] = .string(timestamp(snapshot.now))
        properties["client_count"] = .integer(snapshot.clientCount)
        properties["power"] = .object([
            "mains_present": .optional(power.mainsPresent, JSONValue.bool),
            "battery_volts": .optional(power.batteryVolts, JSONValue.number),
            "battery_percent": .optional(power.batteryPercent, JSONValue.number),
            "watts": .optional(power.watts, JSONValue.number),
            "battery_hours_left": .optional(power.hoursLeft?.likely, JSONValue.number),
        ])
        properties["readings"] = .array(snapshot.latest.map { readingProperties($0.reading, now: snapshot.now) })
        properties["official_announcements"] = .integer(snapshot.announcements.count)
        properties["bulletin_counts"] = .array(
            snapshot.bulletinCounts.map { count in
                .object([
                    "kind": .string(count.kind.rawValue),
                    "category": .optional(count.category) { .string($0.rawValue) },
                    "count": .integer(count.count),
                ])
            }
        )
        return feature(id: boxFeatureID(identity), at: identity.position, properties: properties)
    }

    private static func readingProperties(_ reading: Reading, now: Date) -> JSONValue {
        .object([
            "sensor": .string(reading.sensorID),
            "quantity": .string(reading.quantity.rawValue),
            "value": .number(reading.value),
            "unit": .string(reading.unit.symbol),
            "ucum": .string(reading.unit.ucum),
            "quality": .string(reading.quality.description),
            "measured_at": .string(timestamp(reading.measuredAt)),
            "age_s": .integer(ageSeconds(of: reading.measuredAt, at: now)),
        ])
    }

    private static func neighbourFeature(_ neighbour: NeighbourBox, now: Date) -> JSONValue {
        var properties = identityProperties(neighbour.identity)
        properties["feature"] = .string("box")
        properties["this_box"] = .bool(false)
        properties["online"] = .bool(neighbour.online)
        properties["mode"] = .optional(neighbour.mode) { .string($0.rawValue) }
        properties["battery_volts"] = .optional(neighbour.batteryVolts, JSONValue.number)
        properties["last_seen"] = .string(timestamp(neighbour.lastSeen))
        properties["age_s"] = .integer(ageSeconds(of: neighbour.lastSeen, at: now))
        properties["path"] = .string(neighbour.path)
        return feature(id: boxFeatureID(neighbour.identity), at: neighbour.identity.position, properties: properties)
    }

    private static func helpPointFeature(_ point: HelpPoint, number: Int, of identity: BoxIdentity) -> JSONValue {
        let properties: [String: JSONValue] = [
            "feature": .string("help_point"),
            "name": .string(point.name),
            "address": .string(point.address),
            "offers": .array(point.offers.map(JSONValue.string)),
            "altitude_msl_m": .optional(point.position?.altitude, JSONValue.number),
        ]
        return feature(
            id: "help_point:\(identity.district)/\(identity.boxID)/\(number)", at: point.position, properties: properties
        )
    }

    private static func warningFeature(_ warning: LocalWarning, of identity: BoxIdentity) -> JSONValue? {
        guard var properties = WarningFeed.properties(warning, identity: identity) else { return nil }
        properties["feature"] = .string("warning")
        properties["box"] = .string(boxFeatureID(identity))
        // The start tells two warnings of the same hazard apart; the id stays while the warning's level moves.
        let id = "warning:\(identity.district)/\(identity.boxID)/\(warning.hazard.rawValue)-\(CAPText.compactDateTime(warning.startedAt))"
        return feature(id: id, at: identity.position, properties: properties)
    }

    private static func postFeature(_ post: BulletinPost, snapshot: PortalSnapshot) -> JSONValue {
        let identity = snapshot.identity
        let originBox = snapshot.originBox(of: post)
        let properties: [String: JSONValue] = [
            "feature": .string("bulletin_post"),
            "kind": .string(post.kind.rawValue),
            "category": .optional(post.category) { .string($0.rawValue) },
            "text": .string(post.text),
            "place": .string(post.place),
            "created_at": .string(timestamp(post.createdAt)),
            "expires_at": .string(timestamp(post.expiresAt)),
            "age_s": .integer(ageSeconds(of: post.createdAt, at: snapshot.now)),
            "box": .string(boxFeatureID(identity)),
            // Where a post came from when it was not typed on this box (a pilot box's emergency button, a box
            // heard over LoRa); absent for the box's own posts.
            "origin": .optional(post.origin, JSONValue.string),
            "position_of": .string(originBox == nil ? "this_box" : "origin_box"),
        ]
        return feature(
            id: "post:\(identity.district)/\(identity.boxID)/\(post.id)", at: originBox?.position ?? identity.position, properties: properties)
    }

    private static func identityProperties(_ identity: BoxIdentity) -> [String: JSONValue] {
        [
            "district": .string(identity.district),
            "box_id": .string(identity.boxID),
            "name": .string(identity.name),
            "altitude_msl_m": .optional(identity.position?.altitude, JSONValue.number),
        ]
    }

    private static func boxFeatureID(_ identity: BoxIdentity) -> String {
        "box:\(identity.district)/\(identity.boxID)"
    }

    private static func feature(id: String, at position: GeoPosition?, properties: [String: JSONValue]) -> JSONValue {
        .object([
            "type": .string("Feature"),
            "id": .string(id),
            "geometry": point(position),
            "properties": .object(properties),
        ])
    }

    /// A GeoJSON Point, longitude first, or `null` when there is no position on the earth to show.
    private static func point(_ position: GeoPosition?) -> JSONValue {
        guard let position, position.isValid else { return .null }
        return .object([
            "type": .string("Point"),
            "coordinates": .array([.number(roundedToMicrodegrees(position.longitude)), .number(roundedToMicrodegrees(position.latitude))]),
        ])
    }

    private static func roundedToMicrodegrees(_ degrees: Double) -> Double {
        (degrees * 1_000_000).rounded() / 1_000_000
    }

    /// Whole seconds from `date` to `now`; negative when the other clock runs ahead, which is worth seeing.
    private static func ageSeconds(of date: Date, at now: Date) -> Int {
        let seconds = now.timeIntervalSince(date).rounded()
        guard seconds.isFinite else { return 0 }
        return Int(max(min(seconds, Double(Int32.max)), Double(Int32.min)))
    }

    /// RFC 3339 UTC time with whole seconds: what GIS tools parse without configuration.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }
}
