/// What went wrong with one kind of device on a serial line (the chip's own cases), worded for a resident.
///
/// Each serial driver has its own cases (``SDS011ErrorCode``, ``NMEAGPSErrorCode``, …); ``SerialDeviceError`` adds
/// the port they happened on, so every driver's error has the same shape: a code to match on and a port to name.
public protocol SerialDeviceFailure: Sendable, Hashable {
    /// What went wrong with the device on `port` ("/dev/ttyUSB0") and what a resident can check.
    func description(port: String) -> String
}

/// A device on a serial port that did not answer as its protocol says: the driver's ``SerialDeviceFailure`` and the
/// port it happened on.
///
/// Drivers name their instance (`public typealias SDS011Error = SerialDeviceError<SDS011ErrorCode>`), so callers
/// write `SDS011Error(.noMeasurement, port: name)` and match on `error.code`.
public struct SerialDeviceError<Failure: SerialDeviceFailure>: Error, Sendable, Hashable, CustomStringConvertible {
    /// The driver's cases.
    public typealias Code = Failure

    public var code: Code
    /// The serial port ("/dev/ttyUSB0").
    public var port: String

    public init(_ code: Code, port: String) {
        self.code = code
        self.port = port
    }

    public var description: String { self.code.description(port: self.port) }
}
