import Synchronization

/// A chip on a simulated I²C bus: it sees the same messages a real chip would see on the wire.
///
/// Implementations follow the chip's datasheet (register map with auto-increment, or a command state
/// machine). Throwing `.noAcknowledge` models the chip NACKing, exactly like the Linux adapter reports it.
public protocol SimulatedI2CChip: AnyObject, Sendable {
    /// A write message (STOP after it).
    func receive(_ bytes: [UInt8]) throws(I2CError.Code)
    /// A read message of `count` bytes.
    func transmit(count: Int) throws(I2CError.Code) -> [UInt8]
    /// A write followed by a read after a repeated start. By default the same as a write then a read.
    func receiveThenTransmit(_ bytes: [UInt8], count: Int) throws(I2CError.Code) -> [UInt8]
}

extension SimulatedI2CChip {
    public func receiveThenTransmit(_ bytes: [UInt8], count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.receive(bytes)
        return try self.transmit(count: count)
    }
}

/// Faults a simulated bus can be told to produce, as wiring produces them.
public enum SimulatedBusFault: Sendable, Hashable {
    /// Every transfer times out (SDA held low).
    case stuck
}

/// A simulated I²C bus: chips attached at addresses, served through the same ``I2CBus`` protocol the
/// Linux bus implements. An address with no chip NACKs, as on a real bus.
public final class SimulatedI2CBus: I2CBus {
    public let name: String
    private let state = Mutex<State>(State())

    private struct State {
        var chips: [UInt8: any SimulatedI2CChip] = [:]
        var fault: SimulatedBusFault?
        var transfers = 0
    }

    public init(name: String) {
        self.name = name
    }

    /// Attaches `chip` at `address`, replacing whatever was there.
    public func attach(_ chip: any SimulatedI2CChip, at address: UInt8) {
        self.state.withLock { $0.chips[address] = chip }
    }

    /// Removes the chip at `address` (a chip that fell off its header).
    public func detach(at address: UInt8) {
        _ = self.state.withLock { $0.chips.removeValue(forKey: address) }
    }

    /// Sets or clears a bus-wide fault.
    public func setFault(_ fault: SimulatedBusFault?) {
        self.state.withLock { $0.fault = fault }
    }

    /// Addresses that have a chip attached, in ascending order.
    public var occupiedAddresses: [UInt8] { self.state.withLock { $0.chips.keys.sorted() } }

    /// How many transfers the bus has carried (for tests that check what went over the wire).
    public var transferCount: Int { self.state.withLock { $0.transfers } }

    /// A chip is attached at `address` and the bus is not stuck: it would acknowledge its address.
    public func probe(address: UInt8) -> Bool {
        self.state.withLock { state in state.fault != .stuck && state.chips[address] != nil }
    }

    public func device(at address: UInt8) -> any I2CDevice {
        SimulatedI2CDevice(bus: self, address: address)
    }

    fileprivate func withChip<T>(
        at address: UInt8,
        _ body: (any SimulatedI2CChip) throws(I2CError.Code) -> T
    ) throws(I2CError) -> T {
        let (chip, fault) = self.state.withLock { state in
            state.transfers += 1
            return (state.chips[address], state.fault)
        }
        if fault == .stuck { throw I2CError(.timeout, bus: self.name, address: address) }
        guard let chip else { throw I2CError(.noAcknowledge, bus: self.name, address: address) }
        do {
            return try body(chip)
        } catch {
            throw I2CError(error, bus: self.name, address: address)
        }
    }
}

struct SimulatedI2CDevice: I2CDevice {
    let bus: SimulatedI2CBus
    let address: UInt8
    var busName: String { self.bus.name }

    func write(_ bytes: [UInt8]) async throws(I2CError) {
        try self.bus.withChip(at: self.address) { chip throws(I2CError.Code) in try chip.receive(bytes) }
    }

    func read(count: Int) async throws(I2CError) -> [UInt8] {
        try self.bus.withChip(at: self.address) { chip throws(I2CError.Code) in try chip.transmit(count: count) }
    }

    func writeRead(_ bytes: [UInt8], count: Int) async throws(I2CError) -> [UInt8] {
        try self.bus.withChip(at: self.address) { chip throws(I2CError.Code) in
            try chip.receiveThenTransmit(bytes, count: count)
        }
    }
}
