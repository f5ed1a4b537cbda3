/// What went wrong on an I²C transfer, in the terms of the Linux adapter errors, with what a resident can check.
public struct I2CError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The device did not acknowledge (EREMOTEIO): absent, wrong address, not ready, or loose wiring.
        case noAcknowledge
        /// The transfer timed out (ETIMEDOUT): a stuck bus or a chip stretching the clock too long.
        case timeout
        /// The bus device itself is missing (ENXIO/ENODEV/ENOENT): I²C not enabled, wrong bus number.
        case noSuchBus
        /// Permission denied (EACCES/EPERM): the user is not in the `i2c` group.
        case permissionDenied
        /// Any other adapter error, with its errno.
        case io(errno: Int32)
    }

    public var code: Code
    /// The bus name ("/dev/i2c-1", "sim:i2c-1").
    public var bus: String
    public var address: UInt8?

    public init(_ code: Code, bus: String, address: UInt8? = nil) {
        self.code = code
        self.bus = bus
        self.address = address
    }

    public var description: String {
        let at = self.address.map { " at address 0x\(String($0, radix: 16, uppercase: false))" } ?? ""
        switch self.code {
        case .noAcknowledge:
            return "no answer on \(self.bus)\(at) (NACK): check wiring, power and the address"
        case .timeout:
            return "I²C timeout on \(self.bus)\(at): the bus may be stuck; power-cycle the sensors"
        case .noSuchBus:
            return "\(self.bus) does not exist: enable I²C (raspi-config → Interface Options → I2C)"
        case .permissionDenied:
            return "no permission for \(self.bus): add the kiezbox user to the i2c group"
        case .io(let errno):
            return "I²C error on \(self.bus)\(at) (errno \(errno))"
        }
    }
}

/// One device on an I²C bus, addressed by its 7-bit address.
///
/// The three primitives are what every chip needs: register chips (BME280, INA2xx) use ``writeRead(_:count:)``
/// (a write and a read joined by a repeated start); command chips (Sensirion) use ``write(_:)`` and
/// ``read(count:)`` with a STOP in between, because some of them cannot do a repeated start.
public protocol I2CDevice: Sendable {
    var address: UInt8 { get }
    /// The bus the device is on, for error messages.
    var busName: String { get }

    /// Writes `bytes` in one message, ending with STOP.
    func write(_ bytes: [UInt8]) async throws(I2CError)
    /// Reads `count` bytes in one message.
    func read(count: Int) async throws(I2CError) -> [UInt8]
    /// Writes `bytes`, then reads `count` bytes after a repeated start, as one combined transfer.
    func writeRead(_ bytes: [UInt8], count: Int) async throws(I2CError) -> [UInt8]
}

extension I2CDevice {
    /// Reads `count` consecutive registers from `register` (auto-increment burst read).
    public func readRegisters(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8] {
        try await self.writeRead([register], count: count)
    }

    /// Reads one register.
    public func readRegister(_ register: UInt8) async throws(I2CError) -> UInt8 {
        let bytes = try await self.writeRead([register], count: 1)
        guard let byte = bytes.first else { throw I2CError(.io(errno: 5), bus: self.busName, address: self.address) }
        return byte
    }

    /// Writes one register.
    public func writeRegister(_ register: UInt8, _ value: UInt8) async throws(I2CError) {
        try await self.write([register, value])
    }
}

/// An I²C bus: a Linux adapter (`/dev/i2c-N`) or a simulated one.
public protocol I2CBus: Sendable {
    var name: String { get }
    /// The device at `address` (7-bit). Nothing is sent until the device is used.
    func device(at address: UInt8) -> any I2CDevice
}
