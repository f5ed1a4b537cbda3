#if canImport(Glibc)
import Foundation
import Glibc
import MeshRelay
import Synchronization

/// A ``SimulatedMeshtasticRadio`` on a real serial line: a pseudo-terminal reached through a stable symbolic link
/// (as `/dev/serial/by-id/…` names a USB radio), so the link under test opens ``path`` with the production
/// ``LinuxSerialPort``. ``unplug()`` hangs the line up (the master closes, the port's reads fail); ``plugIn()`` makes
/// a new pseudo-terminal and points the link at it, as re-plugging a USB radio makes a new tty node.
public final class SimulatedMeshtasticSerialLine: Sendable {
    public let radio: SimulatedMeshtasticRadio
    /// The stable name to open.
    public let path: String
    private let line = Mutex<(terminal: PseudoTerminal, pump: Task<Void, Never>)?>(nil)

    /// The folder of ``path``, removed with this line.
    private let directory: String

    /// Plugs the radio in, reachable at ``path`` in a new temporary folder.
    public init(radio: SimulatedMeshtasticRadio) throws {
        self.radio = radio
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshtastic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.path = self.directory + "/usb-Heltec_meshtastic-if00"
        try self.plugIn()
    }

    deinit {
        if let (terminal, pump) = self.line.withLock({ $0.take() }) {
            pump.cancel()
            terminal.closeMaster()
        }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// The pseudo-terminal's own name (changes with every ``plugIn()``).
    public var currentDevice: String? { self.line.withLock { $0?.terminal.slavePath } }

    /// A new pseudo-terminal behind ``path``, with the radio pumping (writes split in pieces, log text on).
    public func plugIn() throws {
        let terminal = try PseudoTerminal()
        unlink(self.path)
        guard symlink(terminal.slavePath, self.path) == 0 else {
            terminal.closeMaster()
            throw PseudoTerminalError(call: "symlink", errno: errno)
        }
        self.radio.clientConnected()
        let device = PseudoTerminalDevice(terminal: terminal, device: self.radio, splitsWrites: true)
        let pump = Task { await device.run() }
        self.line.withLock { $0 = (terminal, pump) }
    }

    /// Pulls the cable: the pump stops and the line hangs up.
    public func unplug() async {
        guard let (terminal, pump) = self.line.withLock({ $0.take() }) else { return }
        pump.cancel()
        await pump.value
        terminal.closeMaster()
        unlink(self.path)
        self.radio.clientDisconnected()
    }
}
#endif
