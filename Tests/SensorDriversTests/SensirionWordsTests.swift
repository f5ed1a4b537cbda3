import SensorDrivers
import Testing

@Suite("Sensirion CRC-8 and word framing (sensors.md §2)")
struct SensirionWordsTests {
    @Test(
        "CRC-8 poly 0x31, init 0xFF: reference vectors",
        arguments: [
            (word: UInt16(0xBEEF), crc: UInt8(0x92)),  // datasheet check value
            (word: 0x0000, crc: 0x81),
            (word: 0x0001, crc: 0xB0),
            (word: 0x6666, crc: 0x93),  // SHT3x/SHT4x vector, §3
            (word: 0x8000, crc: 0xA2),
            (word: 0x01F4, crc: 0x33),  // SCD4x: 500 ppm (the datasheet misprints 0x7b)
            (word: 0x7FCE, crc: 0x7B),  // SCD4x FRC example: where the datasheet's 0x7b comes from
            (word: 0x4144, crc: 0x05),  // SPS30: 12.25 µg/m³ high word
            (word: 0x0300, crc: 0xAC),  // SPS30 start argument (float format)
        ]
    )
    func crcVectors(word: UInt16, crc: UInt8) {
        #expect(SensirionCRC.checksum(of: word) == crc)
        #expect(SensirionCRC.checksum([UInt8(word >> 8), UInt8(word & 0xFF)]) == crc)
    }

    @Test("encode puts MSB, LSB, CRC for each word")
    func encode() {
        #expect(SensirionWords.encode([0x6666, 0x8000]) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        #expect(SensirionWords.encode([]) == [])
    }

    @Test("decode returns the words of a valid frame")
    func decode() throws {
        #expect(try SensirionWords.decode([0x66, 0x66, 0x93, 0x80, 0x00, 0xA2]) == [0x6666, 0x8000])
    }

    @Test("decode names the first word whose CRC fails", arguments: [0, 1, 2])
    func decodeMismatch(corruptedWord: Int) {
        var bytes = SensirionWords.encode([0x1234, 0xBEEF, 0x0001])
        bytes[corruptedWord * 3 + 2] ^= 0x01
        let error = #expect(throws: SensirionWordError.self) { try SensirionWords.decode(bytes) }
        let expected = [UInt16(0x1234), 0xBEEF, 0x0001].map(SensirionCRC.checksum(of:))[corruptedWord]
        #expect(error?.code == .checksumMismatch(word: corruptedWord, received: expected ^ 0x01, expected: expected))
        #expect(error?.description.contains("word \(corruptedWord)") == true)
    }

    @Test("the SHT3x vector with a corrupted CRC (66 66 94 …) is rejected")
    func sht3xCorruptedVector() {
        let error = #expect(throws: SensirionWordError.self) {
            try SensirionWords.decode([0x66, 0x66, 0x94, 0x80, 0x00, 0xA2])
        }
        #expect(error?.code == .checksumMismatch(word: 0, received: 0x94, expected: 0x93))
    }

    @Test("a corrupted data byte is caught as well as a corrupted CRC")
    func corruptedData() {
        #expect(throws: SensirionWordError.self) { try SensirionWords.decode([0x66, 0x67, 0x93]) }
    }

    @Test("a byte count that is not whole words is an error", arguments: [1, 2, 4, 5, 7])
    func incomplete(count: Int) {
        let bytes = Array(SensirionWords.encode([0xBEEF, 0xBEEF, 0xBEEF]).prefix(count))
        let error = #expect(throws: SensirionWordError.self) { try SensirionWords.decode(bytes) }
        #expect(error?.code == .incompleteWord(byteCount: count))
    }

    @Test("commands carry no CRC; their arguments do")
    func commandFrames() {
        #expect(SensirionWords.command(0x2400) == [0x24, 0x00])
        #expect(SensirionWords.command(0x0010, arguments: [0x0000]) == [0x00, 0x10, 0x00, 0x00, 0x81])
        #expect(SensirionWords.command(0x0010, arguments: [1013]) == [0x00, 0x10, 0x03, 0xF5, 0xDB])
        #expect(SensirionWords.command(0x0010, arguments: [0x0300]) == [0x00, 0x10, 0x03, 0x00, 0xAC])
        #expect(SensirionWords.command(0x241D, arguments: [0x07E6]) == [0x24, 0x1D, 0x07, 0xE6, 0x48])
    }

    @Test("big-endian float32 from two words (SCD30 interface-description example)")
    func floats() {
        #expect(SensirionWords.float(high: 0x43DB, low: 0x8C2E) == Float(bitPattern: 0x43DB_8C2E))
        #expect(abs(Double(SensirionWords.float(high: 0x43DB, low: 0x8C2E)) - 439.09515) < 1e-4)
        #expect(abs(Double(SensirionWords.float(high: 0x41D9, low: 0xE7FF)) - 27.23828) < 1e-5)
        #expect(abs(Double(SensirionWords.float(high: 0x4243, low: 0x3A1B)) - 48.80674) < 1e-5)
        #expect(SensirionWords.words(of: 12.25) == [0x4144, 0x0000])
        #expect(SensirionWords.encode(SensirionWords.words(of: 12.25)) == [0x41, 0x44, 0x05, 0x00, 0x00, 0x81])
        #expect(SensirionWords.floats(from: [0x4144, 0x0000, 0x43DB, 0x8C2E]) == [12.25, Float(bitPattern: 0x43DB_8C2E)])
        #expect(SensirionWords.uint32(high: 0x0020, low: 0x0010) == 0x0020_0010)
    }
}

@Suite("SimulatedSensirionWire faults and framing")
struct SimulatedSensirionWireTests {
    private func rig() -> (chip: SimulatedSHT3x, device: any I2CDevice) {
        let (chip, device) = attach(SimulatedSHT3x(), at: 0x44)
        chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
        return (chip, device)
    }

    @Test("an answer is read once; a second read without a command is NACKed")
    func answerConsumed() async throws {
        let (chip, device) = self.rig()
        try await device.write([0x24, 0x00])
        #expect(try await device.read(count: 6) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        await #expect(throws: I2CError.self) { try await device.read(count: 6) }
        #expect(chip.wire.transfers == [.write([0x24, 0x00]), .read(count: 6), .nackedRead(count: 6)])
    }

    @Test("reads past the answer are 0xFF; short reads are truncated")
    func lengths() async throws {
        let (_, device) = self.rig()
        try await device.write([0x24, 0x00])
        #expect(try await device.read(count: 8) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2, 0xFF, 0xFF])
        try await device.write([0x24, 0x00])
        #expect(try await device.read(count: 3) == [0x66, 0x66, 0x93])
    }

    @Test("execution time: the configured number of reads is NACKed, then the answer comes")
    func executionTime() async throws {
        let (chip, device) = self.rig()
        chip.wire.setExecutionTime(prematureReads: 2)
        try await device.write([0x24, 0x00])
        for _ in 0..<2 {
            let error = await #expect(throws: I2CError.self) { try await device.read(count: 6) }
            #expect(error?.code == .noAcknowledge)
        }
        #expect(try await device.read(count: 6) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        #expect(chip.wire.nackedReadCount == 2)
    }

    @Test("corrupted CRCs: the next N words carry a wrong CRC, data bytes intact")
    func corruption() async throws {
        let (chip, device) = self.rig()
        chip.wire.corruptChecksums(ofNextWords: 1)
        try await device.write([0x24, 0x00])
        let bytes = try await device.read(count: 6)
        #expect(bytes[0...1] == [0x66, 0x66] && bytes[2] != 0x93)
        #expect(Array(bytes[3...]) == [0x80, 0x00, 0xA2])
        try await device.write([0x24, 0x00])
        #expect(try await device.read(count: 6) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
    }

    @Test("garbage fails the first word's CRC and is deterministic")
    func garbage() async throws {
        let (chip, device) = self.rig()
        chip.wire.sendGarbage(onNextReads: 2)
        try await device.write([0x24, 0x00])
        let first = try await device.read(count: 6)
        #expect(throws: SensirionWordError.self) { try SensirionWords.decode(first) }
        let (other, otherDevice) = self.rig()
        other.wire.sendGarbage(onNextReads: 1)
        try await otherDevice.write([0x24, 0x00])
        #expect(try await otherDevice.read(count: 6) == first)
    }

    @Test("NACK faults refuse writes and reads alike, and are logged")
    func nacks() async throws {
        let (chip, device) = self.rig()
        chip.wire.nackNextTransfers(2)
        await #expect(throws: I2CError.self) { try await device.write([0x24, 0x00]) }
        await #expect(throws: I2CError.self) { try await device.read(count: 6) }
        try await device.write([0x24, 0x00])
        #expect(chip.wire.transfers == [.nackedWrite([0x24, 0x00]), .nackedRead(count: 6), .write([0x24, 0x00])])
        chip.wire.nackNextTransfers(5)
        chip.wire.clearFaults()
        #expect(try await device.read(count: 6).count == 6)
    }
}
