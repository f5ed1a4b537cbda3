import Foundation
public import KiezboxCore

/// The JSON body of `kiezbox/v1/<district>/<box>/readings`: a batch of readings, each an OGC SensorThings
/// Observation (phenomenonTime, result, unitOfMeasurement) plus the stable id receivers de-duplicate by.
/// Documented in docs/mqtt.md.
public struct ReadingsMessage: Codable, Sendable, Hashable {
    public struct Observation: Codable, Sendable, Hashable {
        /// "<store instance>:<reading id>", unique across boxes and restarts.
        public var id: String
        /// The configured sensor ("climate").
        public var sensor: String
        /// The quantity ("temperature"); its unit is fixed.
        public var quantity: String
        /// When it was measured, ISO 8601 UTC with milliseconds.
        public var phenomenonTime: String
        public var result: Double
        public var unitOfMeasurement: UnitOfMeasurement
        /// "good", "implausible" or "degraded".
        public var quality: String
    }

    /// As in SensorThings: name, symbol and a definition URI (UCUM).
    public struct UnitOfMeasurement: Codable, Sendable, Hashable {
        public var name: String
        public var symbol: String
        public var definition: String
    }

    /// Message format version; a receiver can refuse what it does not understand.
    public var version: Int
    public var district: String
    public var box: String
    public var observations: [Observation]

    public init(_ readings: [StoredReading], from sender: SenderIdentity) {
        self.version = 1
        self.district = sender.box.district
        self.box = sender.box.boxID
        self.observations = readings.map { stored in
            let reading = stored.reading
            return Observation(
                id: sender.readingID(stored),
                sensor: reading.sensorID,
                quantity: reading.quantity.rawValue,
                phenomenonTime: reading.measuredAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
                result: reading.value,
                unitOfMeasurement: UnitOfMeasurement(
                    name: reading.quantity.rawValue, symbol: reading.unit.symbol,
                    definition: "https://ucum.org/ucum#" + reading.unit.ucum
                ),
                quality: reading.quality.description
            )
        }
    }
}
