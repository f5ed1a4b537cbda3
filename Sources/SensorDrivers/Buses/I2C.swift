/// What went wrong on an I²C transfer, in the terms of the Linux adapter errors, with what a resident can check.
public struct I2CError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The device did not acknowledge (EREMOTEIO): absent, wrong address, not ready, or loose wiring.
        case noAcknowledge
        /// No device at the address (ENXIO/ENODEV from the adapter): absent, unpowered, or the wrong address.
        case noDevice
        /// The transfer timed out (ETIMEDOUT): a stuck bus or a chip stretching the clock too long.
        case timeout
        /// The bus device itself is missing (ENXIO/ENODEV/ENOENT): I²C not enabled, wrong bus number.
        case noSuchBus
        /// Permission denied (EACCES/EPERM): the user is not in the `i2c` group.
        case permissionDenied
        /// The adapter speaks SMBus only and cannot carry plain I²C messages (no `I2C_FUNC_I2C`), which raw
        /// ``I2CDevice/write(_:)``, ``I2CDevice/read(count:)`` and ``I2CDevice/writeRead(_:count:)`` need.
        case plainI2CUnsupported
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
        case .noDevice:
            return "no device\(at) on \(self.bus): check that the chip is powered and wired, and its address"
        case .timeout:
            return "I²C timeout on \(self.bus)\(at): the bus may be stuck; power-cycle the sensors"
        case .noSuchBus:
            return "\(self.bus) does not exist: enable I²C (raspi-config → Interface Options → I2C)"
        case .permissionDenied:
            return "no permission for \(self.bus): add the kiezbox user to the i2c group"
        case .plainI2CUnsupported:
            return "\(self.bus) is an SMBus-only adapter and cannot send plain I²C messages\(at): "
                + "connect this sensor to a full I²C controller (on a Raspberry Pi: /dev/i2c-1)"
        case .io(let errno):
            return "I²C error on \(self.bus)\(at) (errno \(errno))"
        }
    }
}

/// One device on an I²C bus, addressed by its 7-bit address.
///
/// Two families of calls, as on Linux:
/// - raw I²C messages (``write(_:)``, ``read(count:)``, ``writeRead(_:count:)``): command chips (Sensirion)
///   use `write` and `read` with a STOP in between, because some cannot do a repeated start;
/// - SMBus calls (byte, word and I²C-block data): register chips (BME280, INA2xx) use these. On Linux they go
///   through libi2c's `i2c_smbus_*`, which every adapter (and the kernel's `i2c-stub`) supports, while raw
///   messages need `I2C_FUNC_I2C`. Their default implementations here express them as the raw messages a
///   chip sees on the wire, which is what a simulated bus serves.
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

    /// SMBus read byte data: the register's value.
    func readByteData(_ register: UInt8) async throws(I2CError) -> UInt8
    /// SMBus write byte data.
    func writeByteData(_ register: UInt8, _ value: UInt8) async throws(I2CError)
    /// SMBus read word data, in SMBus byte order: the first byte on the wire is the low byte. Chips that send
    /// the most significant byte first (TI INA2xx, ADS1115) must swap it.
    func readWordData(_ register: UInt8) async throws(I2CError) -> UInt16
    /// SMBus write word data, low byte first on the wire.
    func writeWordData(_ register: UInt8, _ value: UInt16) async throws(I2CError)
    /// I²C block read of `count` (at most 32) consecutive registers from `register`.
    func readBlockData(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8]
    /// I²C block write of `bytes` (at most 32) to consecutive registers from `register`.
    func writeBlockData(_ register: UInt8, _ bytes: [UInt8]) async throws(I2CError)
}

/// The largest SMBus / I²C block transfer (`I2C_SMBUS_BLOCK_MAX`).
public let smbusBlockMaximum = 32

extension I2CDevice {
    public func readByteData(_ register: UInt8) async throws(I2CError) -> UInt8 {
        let bytes = try await self.writeRead([register], count: 1)
        guard bytes.count == 1 else { throw I2CError(.io(errno: 5), bus: self.busName, address: self.address) }
        return bytes[0]
    }

    public func writeByteData(_ register: UInt8, _ value: UInt8) async throws(I2CError) {
        try await self.write([register, value])
    }

    public func readWordData(_ register: UInt8) async throws(I2CError) -> UInt16 {
        let bytes = try await self.writeRead([register], count: 2)
        guard bytes.count == 2 else { throw I2CError(.io(errno: 5), bus: self.busName, address: self.address) }
        return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
    }

    public func writeWordData(_ register: UInt8, _ value: UInt16) async throws(I2CError) {
        try await self.write([register, UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)])
    }

    public func readBlockData(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8] {
        try await self.writeRead([register], count: count)
    }

    public func writeBlockData(_ register: UInt8, _ bytes: [UInt8]) async throws(I2CError) {
        try await self.write([register] + bytes)
    }
}

extension I2CDevice {
    /// Reads `count` consecutive registers from `register` (auto-increment burst read).
    public func readRegisters(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8] {
        if count <= smbusBlockMaximum { return try await self.readBlockData(register, count: count) }
        return try await self.writeRead([register], count: count)
    }

    /// Reads one register.
    public func readRegister(_ register: UInt8) async throws(I2CError) -> UInt8 {
        try await self.readByteData(register)
    }

    /// Writes one register.
    public func writeRegister(_ register: UInt8, _ value: UInt8) async throws(I2CError) {
        try await self.writeByteData(register, value)
    }
}

/// An I²C bus: a Linux adapter (`/dev/i2c-N`) or a simulated one.
public protocol I2CBus: Sendable {
    var name: String { get }
    /// The device at `address` (7-bit). Nothing is sent until the device is used.
    func device(at address: UInt8) -> any I2CDevice
    /// Whether a device answers at `address`, asked in a way no chip minds (as `i2cdetect` does).
    func probe(address: UInt8) -> Bool
}

/// The address range `i2cdetect` scans by default; the rest is reserved by the I²C specification.
public let scannableI2CAddresses: ClosedRange<UInt8> = 0x08...0x77

extension I2CBus {
    /// The addresses where a device answers, in ascending order.
    public func scan(_ addresses: ClosedRange<UInt8> = scannableI2CAddresses) -> [UInt8] {
        addresses.filter { self.probe(address: $0) }
    }
}
