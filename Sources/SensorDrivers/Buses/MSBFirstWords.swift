extension I2CDevice {
    /// Reads a 16-bit register from a chip that sends its most significant byte first (TI INA2xx, ADS1115).
    ///
    /// SMBus read word data returns the first byte on the wire as the low byte (sensors.md §0), so the word is
    /// swapped: `0x985D` from SMBus is the register value `0x5D98`. Using the SMBus call rather than a raw
    /// write+read keeps the driver working on every adapter, including the kernel's SMBus-only `i2c-stub`.
    func readWordMSBFirst(_ register: UInt8) async throws(I2CError) -> UInt16 {
        try await self.readWordData(register).byteSwapped
    }

    /// Writes a 16-bit register to a chip that expects its most significant byte first.
    ///
    /// SMBus write word data sends the low byte first, so the value is swapped before it goes out.
    func writeWordMSBFirst(_ register: UInt8, _ value: UInt16) async throws(I2CError) {
        try await self.writeWordData(register, value.byteSwapped)
    }
}
