#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// How far a value can be trusted. Stored with every reading; uplinks pass it on.
public enum ReadingQuality: Int, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Measured, checksummed and within the chip's plausible range.
    case good = 0
    /// Measured correctly but outside what the physical world plausibly produces (flag, do not hide).
    case implausible = 1
    /// Measured while the sensor is known to be off its best (warming up, saturated, heater on).
    case degraded = 2

    public var description: String {
        switch self {
        case .good: "good"
        case .implausible: "implausible"
        case .degraded: "degraded"
        }
    }
}

/// One measured value: which sensor, what quantity, the value in the quantity's unit, when, how good.
public struct Reading: Sendable, Hashable, Codable {
    /// The configured sensor's id ("climate", "pm-balcony"): stable across restarts, chosen by the resident.
    public var sensorID: String
    public var quantity: Quantity
    public var value: Double
    /// When the chip measured it (wall-clock time of the box).
    public var measuredAt: Date
    public var quality: ReadingQuality

    /// The unit of ``value``; fixed by the quantity.
    public var unit: Unit { self.quantity.unit }

    public init(sensorID: String, quantity: Quantity, value: Double, measuredAt: Date, quality: ReadingQuality = .good) {
        self.sensorID = sensorID
        self.quantity = quantity
        self.value = value
        self.measuredAt = measuredAt
        self.quality = quality
    }
}

/// A reading once it is committed to the store, with the ids that identify it for ever.
///
/// `id` grows monotonically within a store. After a power cut the disk may have lost the last commits, and
/// SQLite then hands their ids out again; `run` (the store's run counter, made durable before the first reading
/// of a daemon run is committed) tells such readings apart. Together with the store's instance id
/// (``ReadingStore/instanceID``) they make ``globalID(storeInstance:)``, unique across stores, restarts and power
/// cuts, which lets receivers drop duplicates.
public struct StoredReading: Sendable, Hashable, Codable, Identifiable {
    public var id: Int64
    /// The store run that committed the reading; 0 for readings committed before runs were counted.
    public var run: Int64
    public var reading: Reading

    public init(id: Int64, run: Int64 = 0, reading: Reading) {
        self.id = id
        self.run = run
        self.reading = reading
    }

    /// The id that names this reading and no other, anywhere: `<store instance>:<run>:<id>`, or
    /// `<store instance>:<id>` for a reading committed before runs were counted (run 0), which keeps the id it
    /// was first sent with.
    public func globalID(storeInstance: String) -> String {
        self.run == 0 ? "\(storeInstance):\(self.id)" : "\(storeInstance):\(self.run):\(self.id)"
    }

    private enum CodingKeys: String, CodingKey { case id, run, reading }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decode(Int64.self, forKey: .id)
        self.run = try container.decodeIfPresent(Int64.self, forKey: .run) ?? 0
        self.reading = try container.decode(Reading.self, forKey: .reading)
    }
}
