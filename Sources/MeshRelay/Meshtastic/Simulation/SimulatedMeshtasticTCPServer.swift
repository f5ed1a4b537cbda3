#if canImport(Glibc)
import Synchronization

/// Serves a ``SimulatedMeshtasticRadio`` on a real TCP listener, as `meshtasticd` serves its radio on port 4403:
/// one client at a time, frames only (no log text), a new client accepted after the last one left. The listener is
/// on a loopback address, on an ephemeral port unless one is given; ``stop()`` and ``start()`` again on the same
/// port are a stopped and restarted `meshtasticd`. When the radio reboots, the client's connection is closed.
public final class SimulatedMeshtasticTCPServer: Sendable {
    public let radio: SimulatedMeshtasticRadio
    public let host: String
    private let state: Mutex<State>

    private struct State {
        var port: Int
        var listener: NonBlockingSocket?
        var client: NonBlockingSocket?
        var task: Task<Void, Never>?
        var connections = 0
    }

    /// - Parameters:
    ///   - host: a loopback address to listen on.
    ///   - port: 0 for an ephemeral port (see ``port`` after ``start()``).
    public init(radio: SimulatedMeshtasticRadio, host: String = "127.0.0.1", port: Int = 0) {
        self.radio = radio
        self.host = host
        self.state = Mutex(State(port: port))
    }

    deinit {
        let (task, listener, client) = self.state.withLock { ($0.task, $0.listener, $0.client) }
        task?.cancel()
        listener?.close()
        client?.close()
    }

    /// The listening port (after the first ``start()``, the same one on every restart).
    public var port: Int { self.state.withLock { $0.port } }

    /// Clients accepted so far.
    public var connectionCount: Int { self.state.withLock { $0.connections } }

    /// Starts listening and serving; returns the port.
    @discardableResult
    public func start() throws(MeshtasticTransportError) -> Int {
        let (listener, port) = try NonBlockingSocket.listen(host: self.host, port: self.port)
        let task = Task { await self.serve(listener) }
        self.state.withLock {
            $0.port = port
            $0.listener = listener
            $0.task = task
        }
        return port
    }

    /// Stops listening and drops the client, as a stopped `meshtasticd` does.
    public func stop() async {
        let (task, listener, client) = self.state.withLock { state in
            defer {
                state.task = nil
                state.listener = nil
                state.client = nil
            }
            return (state.task, state.listener, state.client)
        }
        task?.cancel()
        listener?.close()
        client?.close()
        await task?.value
        self.radio.clientDisconnected()
    }

    /// Drops the current client's connection (a network cut); the server keeps listening.
    public func dropClient() {
        self.state.withLock { $0.client }?.close()
    }

    private func serve(_ listener: NonBlockingSocket) async {
        while !Task.isCancelled {
            let client: NonBlockingSocket
            do {
                guard let accepted = try await listener.accept(timeout: .milliseconds(100)) else { continue }
                client = accepted
            } catch {
                return
            }
            self.state.withLock {
                $0.client = client
                $0.connections += 1
            }
            self.radio.clientConnected()
            await self.pump(client)
            client.close()
            self.radio.clientDisconnected()
        }
    }

    /// Moves bytes both ways until the client leaves, the radio reboots or the server stops.
    private func pump(_ client: NonBlockingSocket) async {
        let generation = self.radio.connectionGeneration
        while !Task.isCancelled {
            do {
                let bytes = try await client.read(maxCount: 4096, timeout: .milliseconds(2))
                if !bytes.isEmpty { self.radio.receive(bytes) }
                let output = self.radio.takeOutput(withLogText: false)
                if !output.isEmpty { try await client.write(output) }
            } catch {
                return
            }
            // A reboot: `rebooted` goes out, then the connection, as meshtasticd's does.
            if self.radio.connectionGeneration != generation {
                try? await client.write(self.radio.takeOutput(withLogText: false))
                return
            }
        }
    }
}
#endif
