#if os(Linux)
import CI2C
import Glibc
import Synchronization

/// A Linux I²C adapter, `/dev/i2c-N`, driven through the kernel's i2c-dev interface and libi2c.
///
/// SMBus calls (byte, word and I²C-block data) go through libi2c's `i2c_smbus_*`, which every adapter supports,
/// the kernel's `i2c-stub` included. Raw messages (``I2CDevice/write(_:)``, ``I2CDevice/read(count:)``,
/// ``I2CDevice/writeRead(_:count:)``) go through `I2C_RDWR` and need an adapter with plain I²C
/// (`I2C_FUNC_I2C`); on an SMBus-only adapter they throw ``I2CError/Code/plainI2CUnsupported`` without touching
/// the bus.
///
/// Threading: the bus opens one file descriptor, shared by every device it hands out. The kernel keeps the
/// target address per descriptor (`I2C_SLAVE`), so "select the address, then transfer" must not interleave
/// with another device's transfer: the descriptor lives inside a `Mutex`, and each transfer (address selection
/// included) runs while holding it. Transfers are blocking system calls of a few milliseconds at most (32 bytes
/// at 100 kHz take about 3 ms), so they run on the calling thread rather than hopping to a dedicated one.
///
/// ```swift
/// let bus = try LinuxI2CBus(busNumber: 1)
/// let climate = BME280(device: bus.device(at: 0x76))
/// ```
public final class LinuxI2CBus: I2CBus {
    /// What an adapter can do, from the `I2C_FUNCS` ioctl (the `I2C_FUNC_*` bits of `linux/i2c.h`).
    public struct Functionality: OptionSet, Sendable, Hashable {
        public let rawValue: UInt

        public init(rawValue: UInt) {
            self.rawValue = rawValue
        }

        /// Plain I²C messages (`I2C_RDWR`, `read`/`write`).
        public static let plainI2C = Functionality(rawValue: UInt(I2C_FUNC_I2C))
        /// SMBus quick write, the default probe of `i2cdetect`.
        public static let smbusQuick = Functionality(rawValue: UInt(I2C_FUNC_SMBUS_QUICK))
        /// SMBus receive byte, the probe `i2cdetect` uses where a quick write could harm the chip.
        public static let smbusReadByte = Functionality(rawValue: UInt(I2C_FUNC_SMBUS_READ_BYTE))
        /// SMBus read and write byte data.
        public static let smbusByteData = Functionality(rawValue: UInt(I2C_FUNC_SMBUS_BYTE_DATA))
        /// SMBus read and write word data.
        public static let smbusWordData = Functionality(rawValue: UInt(I2C_FUNC_SMBUS_WORD_DATA))
        /// I²C block read and write through SMBus (up to 32 bytes).
        public static let smbusI2CBlock = Functionality(rawValue: UInt(I2C_FUNC_SMBUS_I2C_BLOCK))
    }

    /// The device path, "/dev/i2c-1".
    public let name: String
    /// What the adapter can do, asked once when the bus was opened.
    public let functionality: Functionality
    /// The open descriptor; only touched while locked, because address selection is per descriptor.
    private let descriptor: Mutex<CInt>

    /// Opens `/dev/i2c-<busNumber>` (on a Raspberry Pi the header's bus is 1).
    public convenience init(busNumber: Int) throws(I2CError) {
        try self.init(path: "/dev/i2c-\(busNumber)")
    }

    /// Opens an i2c-dev device node and asks the adapter what it can do.
    ///
    /// - Throws: ``I2CError/Code/noSuchBus`` when the node is missing or is not an I²C adapter (I²C not
    ///   enabled, wrong bus number), ``I2CError/Code/permissionDenied`` when the user may not open it.
    public init(path: String) throws(I2CError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw I2CError(Self.openErrorCode(errno: errno), bus: path) }
        var bits: UInt = 0
        let result = kz_i2c_functionality(fd, &bits)
        guard result == 0 else {
            close(fd)
            throw I2CError(Self.openErrorCode(errno: -result), bus: path)
        }
        self.name = path
        self.functionality = Functionality(rawValue: bits)
        self.descriptor = Mutex(fd)
    }

    deinit {
        self.descriptor.withLock { fd in _ = close(fd) }
    }

    public func device(at address: UInt8) -> any I2CDevice {
        LinuxI2CDevice(bus: self, address: address)
    }

    // MARK: - Discovery

    /// Whether a device answers at `address`, asked the way `i2cdetect` asks by default.
    ///
    /// That is an SMBus quick write (address and write bit, no data) everywhere except 0x30–0x37 and 0x50–0x5F,
    /// where a receive byte is used instead: a quick write can corrupt some EEPROMs that live there (Atmel
    /// AT24RF08), while a receive byte can lock up some write-only chips elsewhere. An address whose probe the
    /// adapter cannot perform counts as empty, as `i2cdetect` skips it. An address a kernel driver has claimed
    /// (`i2cdetect`'s "UU") counts as present: a device is there, though this process cannot use it.
    public func probe(address: UInt8) -> Bool {
        let usesReceiveByte = (0x30...0x37).contains(address) || (0x50...0x5F).contains(address)
        let needed: Functionality = usesReceiveByte ? .smbusReadByte : .smbusQuick
        guard self.functionality.contains(needed) else { return false }
        return self.descriptor.withLock { fd in
            let selected = kz_i2c_select_address(fd, UInt16(address))
            if selected == -EBUSY { return true }
            guard selected == 0 else { return false }
            let answer = usesReceiveByte ? i2c_smbus_read_byte(fd) : i2c_smbus_write_quick(fd, UInt8(I2C_SMBUS_WRITE))
            return answer >= 0
        }
    }

    // MARK: - Transfers (used by LinuxI2CDevice)

    /// Runs an SMBus call for the device at `address`: selects the address, then calls `call`, both under the
    /// lock. `call` returns a value or -errno, as libi2c does.
    fileprivate func smbus(_ address: UInt8, _ call: (CInt) -> CInt) throws(I2CError) -> CInt {
        let result = self.descriptor.withLock { fd in
            let selected = kz_i2c_select_address(fd, UInt16(address))
            return selected < 0 ? selected : call(fd)
        }
        guard result >= 0 else { throw self.error(errno: -result, address: address) }
        return result
    }

    /// Runs plain I²C messages as one `I2C_RDWR` transfer (repeated starts between messages, STOP at the end).
    fileprivate func transfer(_ address: UInt8, _ messages: inout [i2c_msg]) throws(I2CError) {
        guard self.functionality.contains(.plainI2C) else {
            throw I2CError(.plainI2CUnsupported, bus: self.name, address: address)
        }
        let count = UInt32(messages.count)
        let result = messages.withUnsafeMutableBufferPointer { buffer in
            self.descriptor.withLock { fd in kz_i2c_transfer(fd, buffer.baseAddress, count) }
        }
        guard result >= 0 else { throw self.error(errno: -result, address: address) }
        // The kernel reports how many messages went through; fewer than asked is a short transfer.
        guard result == count else { throw I2CError(.io(errno: EIO), bus: self.name, address: address) }
    }

    /// The typed error for an errno a transfer failed with.
    fileprivate func error(errno: CInt, address: UInt8) -> I2CError {
        I2CError(Self.transferErrorCode(errno: errno), bus: self.name, address: address)
    }

    /// How the Linux adapters report transfer failures (the Pi's `i2c-bcm2835`, `i2c-stub`, `i2c-gpio`).
    static func transferErrorCode(errno: CInt) -> I2CError.Code {
        switch errno {
        case EREMOTEIO: .noAcknowledge
        case ETIMEDOUT: .timeout
        case ENXIO, ENODEV: .noDevice
        case EACCES, EPERM: .permissionDenied
        default: .io(errno: errno)
        }
    }

    /// Opening fails with ENOENT/ENODEV/ENXIO when the node or its adapter is missing, ENOTTY when the path is
    /// not an i2c-dev node at all.
    static func openErrorCode(errno: CInt) -> I2CError.Code {
        switch errno {
        case ENOENT, ENODEV, ENXIO, ENOTTY: .noSuchBus
        case EACCES, EPERM: .permissionDenied
        default: .io(errno: errno)
        }
    }
}

/// One address on a ``LinuxI2CBus``. Holds the bus, so the descriptor stays open while any device is in use.
struct LinuxI2CDevice: I2CDevice {
    let bus: LinuxI2CBus
    let address: UInt8
    var busName: String { self.bus.name }

    // MARK: Raw I²C messages (I2C_RDWR)

    func write(_ bytes: [UInt8]) async throws(I2CError) {
        var payload = bytes
        try payload.withUnsafeMutableBufferPointer { (buffer) throws(I2CError) in
            var messages = [self.message(reading: false, buffer)]
            try self.bus.transfer(self.address, &messages)
        }
    }

    func read(count: Int) async throws(I2CError) -> [UInt8] {
        var received = [UInt8](repeating: 0, count: count)
        try received.withUnsafeMutableBufferPointer { (buffer) throws(I2CError) in
            var messages = [self.message(reading: true, buffer)]
            try self.bus.transfer(self.address, &messages)
        }
        return received
    }

    /// The write and the read as two messages of one transfer, the read last: the Pi's controller
    /// (`i2c-bcm2835`) refuses a read that is not the last message.
    func writeRead(_ bytes: [UInt8], count: Int) async throws(I2CError) -> [UInt8] {
        var payload = bytes
        var received = [UInt8](repeating: 0, count: count)
        try payload.withUnsafeMutableBufferPointer { (sent) throws(I2CError) in
            try received.withUnsafeMutableBufferPointer { (incoming) throws(I2CError) in
                var messages = [self.message(reading: false, sent), self.message(reading: true, incoming)]
                try self.bus.transfer(self.address, &messages)
            }
        }
        return received
    }

    private func message(reading: Bool, _ buffer: UnsafeMutableBufferPointer<UInt8>) -> i2c_msg {
        i2c_msg(
            addr: UInt16(self.address),
            flags: reading ? UInt16(I2C_M_RD) : 0,
            len: UInt16(buffer.count),
            buf: buffer.baseAddress
        )
    }

    // MARK: SMBus calls (libi2c)

    func readByteData(_ register: UInt8) async throws(I2CError) -> UInt8 {
        UInt8(truncatingIfNeeded: try self.bus.smbus(self.address) { fd in i2c_smbus_read_byte_data(fd, register) })
    }

    func writeByteData(_ register: UInt8, _ value: UInt8) async throws(I2CError) {
        _ = try self.bus.smbus(self.address) { fd in i2c_smbus_write_byte_data(fd, register, value) }
    }

    func readWordData(_ register: UInt8) async throws(I2CError) -> UInt16 {
        UInt16(truncatingIfNeeded: try self.bus.smbus(self.address) { fd in i2c_smbus_read_word_data(fd, register) })
    }

    func writeWordData(_ register: UInt8, _ value: UInt16) async throws(I2CError) {
        _ = try self.bus.smbus(self.address) { fd in i2c_smbus_write_word_data(fd, register, value) }
    }

    /// An I²C block read through SMBus (`i2c_smbus_read_i2c_block_data`), at most 32 bytes. Returns what the
    /// adapter delivered, which callers check for length.
    func readBlockData(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8] {
        try self.checkBlockLength(count)
        var received = [UInt8](repeating: 0, count: count)
        let delivered = try received.withUnsafeMutableBufferPointer { (buffer) throws(I2CError) in
            try self.bus.smbus(self.address) { fd in
                i2c_smbus_read_i2c_block_data(fd, register, UInt8(count), buffer.baseAddress)
            }
        }
        return Array(received.prefix(Int(delivered)))
    }

    func writeBlockData(_ register: UInt8, _ bytes: [UInt8]) async throws(I2CError) {
        try self.checkBlockLength(bytes.count)
        _ = try self.bus.smbus(self.address) { fd in
            i2c_smbus_write_i2c_block_data(fd, register, UInt8(bytes.count), bytes)
        }
    }

    /// libi2c would silently cut a longer block to 32 bytes, and the kernel refuses an empty one; a caller asking
    /// for either has a bug, reported as the EINVAL the kernel gives for a bad length.
    private func checkBlockLength(_ count: Int) throws(I2CError) {
        guard (1...smbusBlockMaximum).contains(count) else {
            throw I2CError(.io(errno: EINVAL), bus: self.busName, address: self.address)
        }
    }
}
#endif
