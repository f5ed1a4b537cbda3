import SensorDrivers
import Synchronization
import Testing

/// A device that sends `burst` every `period` and echoes what it hears, reversed.
private final class Metronome: SimulatedSerialDevice {
    let period: Duration
    let burst: [UInt8]
    private let next: Mutex<Duration>

    init(period: Duration, burst: [UInt8]) {
        self.period = period
        self.burst = burst
        self.next = Mutex(period)
    }

    func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] { bytes.reversed() }

    func transmissions(upTo time: Duration) -> [UInt8] {
        self.next.withLock { next in
            var bytes: [UInt8] = []
            while next <= time {
                bytes += self.burst
                next += self.period
            }
            return bytes
        }
    }

    func nextTransmissionTime() -> Duration? { self.next.withLock { $0 } }
}

@Suite("SimulatedSerialPort")
struct SimulatedSerialPortTests {
    @Test("queued bytes are read at once, without moving simulated time")
    func queuedBytes() async throws {
        let port = SimulatedSerialPort()
        port.inject([1, 2, 3])
        #expect(try await port.read(maxCount: 2, timeout: .seconds(5)) == [1, 2])
        #expect(try await port.read(maxCount: 8, timeout: .seconds(5)) == [3])
        #expect(port.now == .zero)
    }

    @Test("with nothing queued and nothing due, a read moves time by its timeout and returns nothing")
    func emptyRead() async throws {
        let port = SimulatedSerialPort()
        #expect(try await port.read(maxCount: 8, timeout: .milliseconds(700)).isEmpty)
        #expect(port.now == .milliseconds(700))
        #expect(try await port.read(maxCount: 8, timeout: .zero).isEmpty)
        #expect(port.now == .milliseconds(700))
    }

    @Test("a read waits only until the device's next transmission")
    func waitsForTransmission() async throws {
        let port = SimulatedSerialPort(device: Metronome(period: .seconds(1), burst: [0xAB]))
        #expect(try await port.read(maxCount: 8, timeout: .seconds(5)) == [0xAB])
        #expect(port.now == .seconds(1))
        #expect(try await port.read(maxCount: 8, timeout: .milliseconds(500)).isEmpty)
        #expect(port.now == .milliseconds(1500))
    }

    @Test("writes reach the device, and its answer is queued")
    func answers() async throws {
        let port = SimulatedSerialPort(device: Metronome(period: .seconds(100), burst: []))
        try await port.write([1, 2, 3])
        #expect(port.writes == [[1, 2, 3]])
        #expect(try await port.read(maxCount: 8, timeout: .zero) == [3, 2, 1])
    }

    @Test("the pause advances time and queues what was sent meanwhile; a full buffer overruns")
    func pauseAndOverrun() async throws {
        let port = SimulatedSerialPort(device: Metronome(period: .seconds(1), burst: Array(0..<10)), receiveBufferCapacity: 25)
        try await port.pause(.seconds(5))
        #expect(port.now == .seconds(5))
        #expect(port.queuedByteCount == 25)
        #expect(port.overrunByteCount == 25)
    }

    @Test("reads can be limited to split frames")
    func splitReads() async throws {
        let port = SimulatedSerialPort()
        port.inject(Array(0..<10))
        port.setMaximumBytesPerRead(3)
        #expect(try await port.read(maxCount: 100, timeout: .zero) == [0, 1, 2])
        port.setMaximumBytesPerRead(nil)
        #expect(try await port.read(maxCount: 100, timeout: .zero) == Array(3..<10))
    }

    @Test("a disconnected port fails with .closed until reconnected")
    func disconnect() async throws {
        let port = SimulatedSerialPort(name: "sim:x")
        port.disconnect()
        await #expect(throws: SerialError(.closed, port: "sim:x")) { try await port.read(maxCount: 1, timeout: .zero) }
        await #expect(throws: SerialError(.closed, port: "sim:x")) { try await port.write([1]) }
        port.reconnect()
        #expect(try await port.read(maxCount: 1, timeout: .zero).isEmpty)
    }
}

@Suite("SerialStreamDecoder")
struct SerialStreamDecoderTests {
    @Test("a candidate that never completes is rejected at the format's maximum length and scanning goes on")
    func tooLong() {
        var decoder = SHDLCResponseStreamDecoder()
        let good = SHDLCResponse(command: 3).frame
        decoder.append([0x7E] + [UInt8](repeating: 0x55, count: SHDLC.maximumFrameLength + 10))
        #expect(decoder.next() == nil)
        #expect(decoder.lastRejection == .tooLong(SHDLC.maximumFrameLength + 11))
        #expect(decoder.bufferedByteCount == 0)
        decoder.append(good)
        #expect(decoder.next()?.frame == good)
    }

    @Test("discarding buffered bytes drops a half frame but keeps the statistics")
    func discard() {
        var decoder = PMS5003StreamDecoder()
        decoder.append([0x42, 0x4D, 0x00, 0x1C, 0x01])
        #expect(decoder.next() == nil)
        decoder.discardBufferedBytes()
        #expect(decoder.bufferedByteCount == 0)
        #expect(decoder.statistics.skippedBytes == 5)
    }

    @Test("a long stream is consumed without the buffer growing")
    func compaction() {
        var decoder = SDS011StreamDecoder()
        let frame = SDS011Frame.measurement(SDS011Measurement(pm2_5Tenths: 1, pm10Tenths: 2, deviceID: 3)).bytes
        var delivered = 0
        for _ in 0..<2000 {
            decoder.append(frame + [0x00, 0xAA])
            while decoder.next() != nil { delivered += 1 }
            #expect(decoder.bufferedByteCount <= 1)
        }
        #expect(delivered == 2000)
        // Each 0x00 is noise; each trailing 0xAA is a false start, rejected once the next frame's 0xAA follows it
        // (the last one still waits in the buffer).
        #expect(decoder.statistics.skippedBytes == 2000 + 1999)
        #expect(decoder.statistics.malformedFrames == 1999)
    }
}
