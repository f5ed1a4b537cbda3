import MeshRelay
import SensorDrivers
import Synchronization

/// The two modem dialects, each with its simulator and production driver, so one test covers both.
enum ModemDialect: String, CaseIterable, Sendable, CustomStringConvertible {
    case wioE5
    case rak3172

    var description: String { self.rawValue }

    var kind: LoRaWANModemKind {
        switch self {
        case .wioE5: .wioE5
        case .rak3172: .rak3172
        }
    }

    func simulator(_ radio: SimulatedLoRaWANRadio) -> any SimulatedSerialDevice {
        switch self {
        case .wioE5: SimulatedWioE5(radio: radio)
        case .rak3172: SimulatedRAK3172(radio: radio)
        }
    }

    func modem(port: any SerialPort, timeouts: LoRaWANModemTimeouts, log: ModemLogRecorder) -> any LoRaWANModem {
        LoRaWANModemDetector.modem(kind: self.kind, port: port, timeouts: timeouts, log: log.log)
    }
}

/// Everything a driver logged.
final class ModemLogRecorder: Sendable {
    private let entries = Mutex<[LoRaWANModemLogEntry]>([])

    var log: LoRaWANModemLog {
        { entry in self.entries.withLock { $0.append(entry) } }
    }

    var all: [LoRaWANModemLogEntry] { self.entries.withLock { $0 } }

    func texts(_ kind: LoRaWANModemLogEntry.Kind) -> [String] {
        self.all.filter { $0.kind == kind }.map(\.text)
    }
}

/// A device registered in TTN for the tests; the AppKey is the one in the Wio-E5 wiki's example.
let testKeys = LoRaWANKeys(
    devEUI: [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF],
    joinEUI: [0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07],
    appKey: [0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6, 0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C]
)

/// The AppKey as either dialect or a log could spell it.
let testAppKeySpellings = ["2B7E151628AED2A6ABF7158809CF4F3C", "2b7e151628aed2a6abf7158809cf4f3c"]

/// A device that answers each command line with what `answer` says (lines, CR LF added): for the answers no
/// simulator gives, such as a refused key.
final class AnsweringDevice: SimulatedSerialDevice {
    private let answer: @Sendable (String) -> [String]
    private let partial = Mutex<[UInt8]>([])

    init(_ answer: @escaping @Sendable (String) -> [String]) {
        self.answer = answer
    }

    func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.partial.withLock { partial in
            var output: [UInt8] = []
            for byte in bytes {
                if byte == 0x0A {
                    let line = String(decoding: partial.filter { $0 != 0x0D }, as: UTF8.self)
                    partial = []
                    output += self.answer(line).flatMap { Array(($0 + "\r\n").utf8) }
                } else {
                    partial.append(byte)
                }
            }
            return output
        }
    }
}
