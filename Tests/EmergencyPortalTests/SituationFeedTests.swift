import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore
import Testing

@Suite("Situation feed (GeoJSON, RFC 7946)")
struct SituationFeedTests {
    /// The feed parsed back as any GeoJSON consumer would, with its RFC 7946 violations checked first.
    private func parsedFeed(_ snapshot: PortalSnapshot, access: FeedAccess) throws -> (raw: String, features: [[String: Any]]) {
        let data = SituationFeed.geoJSON(snapshot, access: access)
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(RFC7946Checker.violations(in: document) == [])
        #expect(document["type"] as? String == "FeatureCollection")
        let features = try #require(document["features"] as? [[String: Any]])
        return (String(decoding: data, as: UTF8.self), features)
    }

    private func feature(_ id: String, in features: [[String: Any]]) throws -> [String: Any] {
        try #require(features.first { $0["id"] as? String == id }, "no feature \(id)")
    }

    private func coordinates(_ feature: [String: Any]) -> [Double]? {
        ((feature["geometry"] as? [String: Any])?["coordinates"] as? [Any])?.compactMap(number)
    }

    @Test("the box is a Point at [lon, lat] with mode, power, readings with age, and client count")
    func boxFeature() throws {
        let (_, features) = try parsedFeed(FeedFixtures.snapshot(), access: .authority(name: "Feuerwehr"))
        let box = try feature("box:friedrichshain-kreuzberg/wrangelkiez-01", in: features)
        #expect((box["geometry"] as? [String: Any])?["type"] as? String == "Point")
        #expect(coordinates(box) == [13.4318, 52.4996], "longitude first, then latitude")
        let properties = try #require(box["properties"] as? [String: Any])
        #expect(properties["this_box"] as? Bool == true)
        #expect(properties["mode"] as? String == "crisis")
        #expect(properties["name"] as? String == "Kiezbox Wrangelstraße")
        #expect(properties["client_count"].flatMap(number) == 17)
        #expect(properties["altitude_msl_m"].flatMap(number) == 36)
        #expect(properties["updated"] as? String == "2025-06-01T12:30:00Z")
        let power = try #require(properties["power"] as? [String: Any])
        #expect(power["mains_present"] as? Bool == false)
        #expect(power["battery_volts"].flatMap(number) == 12.4)
        #expect(power["battery_percent"].flatMap(number) == 71)
        #expect(power["watts"].flatMap(number) == 6.5)
        let readings = try #require(properties["readings"] as? [[String: Any]])
        let temperature = try #require(readings.first { $0["quantity"] as? String == "temperature" })
        #expect(temperature["value"].flatMap(number) == 21.5)
        #expect(temperature["unit"] as? String == "°C")
        #expect(temperature["ucum"] as? String == "Cel")
        #expect(temperature["age_s"].flatMap(number) == 90)
        #expect(temperature["measured_at"] as? String == "2025-06-01T12:28:30Z")
        let dust = try #require(readings.first { $0["quantity"] as? String == "pm2_5" })
        #expect(dust["quality"] as? String == "degraded")
        #expect(dust["age_s"].flatMap(number) == 300)
        #expect(properties["official_announcements"].flatMap(number) == 2)
    }

    @Test("neighbours carry online state, mode, battery, last seen with age and path; no position means null geometry")
    func neighbours() throws {
        let (_, features) = try parsedFeed(FeedFixtures.snapshot(), access: .public)
        let online = try feature("box:friedrichshain-kreuzberg/reichenberger-02", in: features)
        #expect(coordinates(online) == [13.428, 52.4978])
        let properties = try #require(online["properties"] as? [String: Any])
        #expect(properties["this_box"] as? Bool == false)
        #expect(properties["online"] as? Bool == true)
        #expect(properties["mode"] as? String == "crisis")
        #expect(properties["battery_volts"].flatMap(number) == 12.6)
        #expect(properties["age_s"].flatMap(number) == 30)
        #expect(properties["last_seen"] as? String == "2025-06-01T12:29:30Z")
        #expect(properties["path"] as? String == "mqtt://broker.kiez:1883")

        let silent = try feature("box:neukoelln/reuter-01", in: features)
        #expect(silent["geometry"] is NSNull, "a box without a position gets geometry null, not an invented point")
        let silentProperties = try #require(silent["properties"] as? [String: Any])
        #expect(silentProperties["online"] as? Bool == false)
        #expect(silentProperties["mode"] is NSNull)
        #expect(silentProperties["battery_volts"] is NSNull)
        #expect(silentProperties["age_s"].flatMap(number) == 3600)
    }

    @Test("without a token: counts per kind and category, no post text, no place, no post features")
    func publicAccessIsAggregateOnly() throws {
        let (raw, features) = try parsedFeed(FeedFixtures.snapshot(), access: .public)
        #expect(!raw.contains(FeedFixtures.marker), "residents' words leaked into the public feed")
        #expect(!features.contains { ($0["properties"] as? [String: Any])?["feature"] as? String == "bulletin_post" })
        let box = try feature("box:friedrichshain-kreuzberg/wrangelkiez-01", in: features)
        let counts = try #require((box["properties"] as? [String: Any])?["bulletin_counts"] as? [[String: Any]])
        let summary = counts.map { count in
            "\(count["kind"] as? String ?? "?")/\(count["category"] as? String ?? "-")=\(count["count"].flatMap(number) ?? -1)"
        }
        #expect(summary == ["request/medical=2.0", "request/water=1.0", "offer/power=1.0", "safe/-=1.0"])
    }

    @Test("with a token: every open post is a feature at the box's position with its text and place")
    func authorityAccessHasPosts() throws {
        let (raw, features) = try parsedFeed(FeedFixtures.snapshot(), access: .authority(name: "Feuerwehr"))
        #expect(raw.contains(FeedFixtures.marker))
        let posts = features.filter { ($0["properties"] as? [String: Any])?["feature"] as? String == "bulletin_post" }
        #expect(posts.count == FeedFixtures.posts.count)
        let insulin = try feature("post:friedrichshain-kreuzberg/wrangelkiez-01/7", in: features)
        #expect(coordinates(insulin) == [13.4318, 52.4996])
        let properties = try #require(insulin["properties"] as? [String: Any])
        #expect(properties["kind"] as? String == "request")
        #expect(properties["category"] as? String == "medical")
        #expect(properties["text"] as? String == "Insulin gebraucht \(FeedFixtures.marker)")
        #expect(properties["place"] as? String == "Wrangelstr. 12 \(FeedFixtures.marker)")
        #expect(properties["created_at"] as? String == "2025-06-01T12:20:00Z")
        #expect(properties["expires_at"] as? String == "2025-06-01T18:30:00Z")
        #expect(properties["age_s"].flatMap(number) == 600)
        let safe = try feature("post:friedrichshain-kreuzberg/wrangelkiez-01/3", in: features)
        #expect((safe["properties"] as? [String: Any])?["category"] is NSNull)
    }

    @Test("a relayed post is at its origin box's position when the neighbour table has one, else at this box's; position_of says which")
    func relayedPostsAtTheirOrigin() throws {
        let snapshot = FeedFixtures.snapshot(bulletin: [FeedFixtures.posts[0]] + FeedFixtures.relayedPosts)
        let (_, features) = try parsedFeed(snapshot, access: .authority(name: "Feuerwehr"))
        func placed(_ id: Int64) throws -> (coordinates: [Double]?, positionOf: String?) {
            let post = try feature("post:friedrichshain-kreuzberg/wrangelkiez-01/\(id)", in: features)
            return (coordinates(post), (post["properties"] as? [String: Any])?["position_of"] as? String)
        }
        #expect(try placed(11) == ([13.428, 52.4978], "origin_box"))
        // A known neighbour without a position, and a box not heard of: here, and said so.
        #expect(try placed(12) == ([13.4318, 52.4996], "this_box"))
        #expect(try placed(13) == ([13.4318, 52.4996], "this_box"))
        #expect(try placed(7) == ([13.4318, 52.4996], "this_box"))
    }

    @Test("hostile free text (quotes, </script>, control characters, emoji) survives the JSON round trip")
    func hostileTextRoundTrips() throws {
        let hostile = FeedFixtures.hostileText + " \u{0}\u{1}\u{1F}\u{7F} \u{2028}\u{2029} \\u0022"
        var post = FeedFixtures.posts[0]
        post.text = hostile
        post.place = hostile
        var identity = FeedFixtures.identity
        identity.name = hostile
        let snapshot = FeedFixtures.snapshot(identity: identity, bulletin: [post])
        let (raw, features) = try parsedFeed(snapshot, access: .authority(name: "Feuerwehr"))
        #expect(!raw.contains("</script>"), "a feed pasted into a page must not close its script element")
        let properties = try #require(try feature("post:friedrichshain-kreuzberg/wrangelkiez-01/7", in: features)["properties"] as? [String: Any])
        #expect(properties["text"] as? String == hostile)
        #expect(properties["place"] as? String == hostile)
        let box = try feature("box:friedrichshain-kreuzberg/wrangelkiez-01", in: features)
        #expect((box["properties"] as? [String: Any])?["name"] as? String == hostile)
    }

    @Test("a box without a position: valid feed, its features and its posts have geometry null")
    func boxWithoutPosition() throws {
        let snapshot = FeedFixtures.snapshot(identity: BoxIdentity(district: "neukoelln", boxID: "new-box", name: "Neue Kiezbox"))
        let (_, features) = try parsedFeed(snapshot, access: .authority(name: "Feuerwehr"))
        #expect(try feature("box:neukoelln/new-box", in: features)["geometry"] is NSNull)
        #expect(try feature("post:neukoelln/new-box/7", in: features)["geometry"] is NSNull)
    }

    @Test("an empty box still gives a valid FeatureCollection with just itself")
    func emptyBox() throws {
        let (_, features) = try parsedFeed(FeedFixtures.emptySnapshot(), access: .public)
        #expect(features.count == 1)
        let properties = try #require(features.first?["properties"] as? [String: Any])
        #expect((properties["bulletin_counts"] as? [Any])?.isEmpty == true)
        #expect((properties["readings"] as? [Any])?.isEmpty == true)
    }

    @Test("positions in the southern and eastern hemisphere keep their order; coordinates are rounded to 6 decimals")
    func coordinateOrderAndRounding() throws {
        let sydney = NeighbourBox(
            identity: BoxIdentity(district: "partner", boxID: "sydney-01", name: "Partner box", position: GeoPosition(latitude: -33.8688, longitude: 151.2093)),
            online: true, mode: .normal, batteryVolts: nil, lastSeen: FeedFixtures.now, path: "mesh"
        )
        var identity = FeedFixtures.identity
        identity.position = GeoPosition(latitude: 52.49961234567, longitude: 13.43180000049)
        let (raw, features) = try parsedFeed(FeedFixtures.snapshot(identity: identity, neighbours: [sydney]), access: .public)
        #expect(coordinates(try feature("box:partner/sydney-01", in: features)) == [151.2093, -33.8688])
        #expect(coordinates(try feature("box:friedrichshain-kreuzberg/wrangelkiez-01", in: features)) == [13.4318, 52.499612])
        #expect(!raw.contains("52.4996123"))
    }

    @Test("an out-of-range position is not published as a point; a non-finite reading becomes null")
    func invalidValues() throws {
        var identity = FeedFixtures.identity
        identity.position = GeoPosition(latitude: 152.5, longitude: 13.4)
        let broken = StoredReading(id: 1, reading: Reading(sensorID: "climate", quantity: .temperature, value: .nan, measuredAt: FeedFixtures.now))
        let (_, features) = try parsedFeed(FeedFixtures.snapshot(identity: identity, latest: [broken]), access: .public)
        let box = try feature("box:friedrichshain-kreuzberg/wrangelkiez-01", in: features)
        #expect(box["geometry"] is NSNull)
        let readings = try #require((box["properties"] as? [String: Any])?["readings"] as? [[String: Any]])
        #expect(readings.first?["value"] is NSNull)
    }

    @Test("feature ids are unique and the same snapshot gives the same bytes")
    func stableIdentifiers() throws {
        let snapshot = FeedFixtures.snapshot()
        let (_, features) = try parsedFeed(snapshot, access: .authority(name: "Feuerwehr"))
        let ids = features.compactMap { $0["id"] as? String }
        #expect(ids.count == features.count)
        #expect(Set(ids).count == ids.count)
        #expect(SituationFeed.geoJSON(snapshot, access: .public) == SituationFeed.geoJSON(snapshot, access: .public))
        #expect(SituationFeed.mediaType == "application/geo+json")
    }

    @Test("the RFC 7946 checker itself rejects crs, swapped or out-of-range positions, open and short rings")
    func checkerBites() throws {
        func violations(_ json: String) throws -> [String] {
            RFC7946Checker.violations(in: try JSONSerialization.jsonObject(with: Data(json.utf8)))
        }
        func point(_ coordinates: String) -> String {
            #"{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":"# + coordinates + "}}"
        }
        #expect(try violations(point("[13.4318,52.4996]")) == [])
        #expect(try !violations(point("[-33.8688,151.2093]")).isEmpty, "lat, lon order")
        #expect(try !violations(point("[13.4318]")).isEmpty)
        #expect(try !violations(point("[13.4318,\"52.4996\"]")).isEmpty)
        #expect(try !violations(#"{"type":"FeatureCollection","crs":{"type":"name"},"features":[]}"#).isEmpty)
        #expect(try !violations(#"{"type":"Feature","geometry":null}"#).isEmpty, "properties member missing")
        func ring(_ positions: String) -> String { #"{"type":"Polygon","coordinates":["# + positions + "]}" }
        #expect(try violations(ring("[[13.434,52.48],[13.437,52.48],[13.437,52.482],[13.434,52.48]]")) == [])
        #expect(try !violations(ring("[[13.434,52.48],[13.437,52.48],[13.437,52.482],[13.434,52.482]]")).isEmpty, "open ring")
        #expect(try !violations(ring("[[13.434,52.48],[13.437,52.48],[13.434,52.48]]")).isEmpty, "3 positions")
    }
}
