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

/// A reading once it is committed to the store, with the id that identifies it for ever.
///
/// `id` grows monotonically and is never reused by the same store; together with the store's
/// instance id (``ReadingStore/instanceID``) it is unique across stores, which lets receivers drop duplicates.
public struct StoredReading: Sendable, Hashable, Codable, Identifiable {
    public var id: Int64
    public var reading: Reading

    public init(id: Int64, reading: Reading) {
        self.id = id
        self.reading = reading
    }
}
