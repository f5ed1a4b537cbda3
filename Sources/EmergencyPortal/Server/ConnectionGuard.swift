import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// How long a connection may take and how many there may be: what keeps an open Wi-Fi's slow, idle and
/// crowding connections from using up the box's file descriptors and memory (docs/portal.md, "Connections").
public struct ConnectionLimits: Sendable, Hashable {
    /// From a request's first byte to the end of its header block.
    public var headerTimeout: Duration
    /// From the end of a response (or from connecting) to the next request's first byte.
    public var idleTimeout: Duration
    /// From the end of a request's header block to the end of its body, however steadily the body trickles in.
    public var bodyTimeout: Duration
    /// Open connections from one client address; more are refused.
    public var maximumPerAddress: Int
    /// Open connections in all; more are refused. With ``maximumPerAddress`` it sets the unit's `LimitNOFILE`.
    public var maximumTotal: Int
    /// The largest request body any route takes; a larger declared `Content-Length` gets 413 at once.
    public var maximumBodyBytes: Int

    public init(
        headerTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(15), bodyTimeout: Duration = .seconds(30),
        maximumPerAddress: Int = 32, maximumTotal: Int = 1024, maximumBodyBytes: Int = 16 * 1024
    ) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
        self.maximumPerAddress = maximumPerAddress
        self.maximumTotal = maximumTotal
        self.maximumBodyBytes = maximumBodyBytes
    }
}

/// Counts open connections per client address and in all, and says whether one more may open. Shared by every
/// event loop of a listener.
///
/// At the total limit a newcomer is not simply refused: if some address holds more connections than the newcomer's
/// address would, that address's oldest connection is closed to make room. Crowding the box from many addresses
/// then costs the crowders their own connections, never a resident's only one.
final class ConnectionAdmission: Sendable {
    enum Refusal: String, Sendable {
        case perAddress = "per-address connection limit reached"
        case total = "connection limit reached"
    }

    private struct State {
        var perAddress: [String: Int] = [:]
        var total = 0
        /// The open connections that may be closed to make room, oldest first per address.
        var channels: [String: [(id: ObjectIdentifier, channel: any Channel)]] = [:]
        var evicted = 0
        var lastLogged: ContinuousClock.Instant?
        var refusedSinceLog = 0
    }

    let limits: ConnectionLimits
    let listener: String
    let logger: Logger
    /// At most one log line per this interval, however many connections are refused.
    let logInterval: Duration
    private let state = Mutex(State())

    init(limits: ConnectionLimits, listener: String, logger: Logger, logInterval: Duration = .seconds(60)) {
        self.limits = limits
        self.listener = listener
        self.logger = logger
        self.logInterval = logInterval
    }

    /// Admits a connection from `address` (counted until ``release(_:channel:)``), or says why not. `channel` makes
    /// the connection one that may be closed to make room for a less crowded address.
    func admit(_ address: String, channel: (any Channel)? = nil) -> Refusal? {
        let (refusal, logLine, victim) = self.state.withLock { state -> (Refusal?, (count: Int, suppressed: Int)?, (any Channel)?) in
            let fromAddress = state.perAddress[address, default: 0]
            var victim: (any Channel)?
            var refusal: Refusal? = fromAddress >= self.limits.maximumPerAddress ? .perAddress : nil
            if refusal == nil, state.total >= self.limits.maximumTotal {
                // The most crowded address gives up its oldest connection, if it holds more than the newcomer's would.
                let crowded = state.channels.max { $0.value.count < $1.value.count }
                if let crowded, crowded.value.count > fromAddress + 1, let oldest = crowded.value.first {
                    state.channels[crowded.key]?.removeFirst()
                    state.evicted += 1
                    victim = oldest.channel
                } else {
                    refusal = .total
                }
            }
            guard let refusal else {
                state.perAddress[address] = fromAddress + 1
                state.total += 1
                if let channel { state.channels[address, default: []].append((ObjectIdentifier(channel), channel)) }
                return (nil, nil, victim)
            }
            state.refusedSinceLog += 1
            let now = ContinuousClock.now
            if let last = state.lastLogged, now - last < self.logInterval { return (refusal, nil, nil) }
            state.lastLogged = now
            defer { state.refusedSinceLog = 0 }
            return (refusal, (refusal == .total ? state.total : fromAddress, state.refusedSinceLog - 1), nil)
        }
        // Closed outside the lock: its close handler releases it (and takes the lock).
        victim?.close(promise: nil)
        if let refusal, let logLine {
            self.logger.warning(
                "\(self.listener) refused a connection: \(refusal.rawValue)",
                metadata: [
                    "client": "\(address)", "open": "\(logLine.count)",
                    "limit": "\(refusal == .total ? self.limits.maximumTotal : self.limits.maximumPerAddress)",
                    "also_refused_since_last_line": "\(logLine.suppressed)",
                ]
            )
        }
        return refusal
    }

    func release(_ address: String, channel: (any Channel)? = nil) {
        self.state.withLock { state in
            if let channel, let index = state.channels[address]?.firstIndex(where: { $0.id == ObjectIdentifier(channel) }) {
                state.channels[address]?.remove(at: index)
                if state.channels[address]?.isEmpty == true { state.channels[address] = nil }
            }
            state.total -= 1
            let remaining = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = remaining > 0 ? remaining : nil
        }
    }

    /// Connections closed so far to make room for a less crowded address.
    var evictedCount: Int { self.state.withLock { $0.evicted } }

    /// Open connections in all and from `address` (for tests and the log).
    func open(from address: String? = nil) -> Int {
        self.state.withLock { state in address.map { state.perAddress[$0, default: 0] } ?? state.total }
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server with the portal's connection limits in front of it.
    static func guardedHTTP1(admission: ConnectionAdmission) -> HTTPServerBuilder {
        .init { responder in
            GuardedHTTP1Channel(
                inner: HTTP1Channel(
                    responder: responder,
                    configuration: .init(additionalChannelHandlers: [RequestDeadlineHandler(limits: admission.limits)])
                ),
                admission: admission
            )
        }
    }
}

/// Hummingbird's HTTP/1.1 child channel, admitted by ``ConnectionAdmission`` and watched for the first byte of each
/// request (which starts the header timeout).
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let admission: ConnectionAdmission

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let address = channel.remoteAddress.flatMap { $0.ipAddress.map { canonicalIPAddress($0) ?? $0 } } ?? "unknown"
        let admission = self.admission
        return channel.eventLoop.makeCompletedFuture {
            if let refusal = admission.admit(address, channel: channel) {
                // Answered and closed here; the channel still goes through Hummingbird's setup, because a failed
                // setup is an error on the listening socket, and that ends the server.
                try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler(refusal: refusal))
            } else {
                channel.closeFuture.whenComplete { _ in admission.release(address, channel: channel) }
                try channel.pipeline.syncOperations.addHandler(FirstByteSignal())
            }
        }.flatMap {
            self.inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await self.inner.handle(value: value, logger: logger)
    }
}

/// Answers `503` with `Connection: close` straight onto the socket and closes; reads nothing.
final class RefuseConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let refusal: ConnectionAdmission.Refusal
    private var answered = false

    init(refusal: ConnectionAdmission.Refusal) { self.refusal = refusal }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.answer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.answer(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func answer(_ context: ChannelHandlerContext) {
        guard !self.answered else { return }
        self.answered = true
        let text = "too many connections (\(self.refusal.rawValue)); try again later\n"
        // Too many from this address is the client's doing (429); the box full of other clients' is the server's (503).
        let status = self.refusal == .perAddress ? "429 Too Many Requests" : "503 Service Unavailable"
        let answer =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\n"
            + "Retry-After: 10\r\nConnection: close\r\n\r\n\(text)"
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}

/// Bytes arrived from the client: sent along the pipeline before the bytes themselves, so the deadline handler
/// behind the HTTP decoder knows when a request started arriving (a slow-loris' header never completes).
struct BytesArrived: Sendable {}

/// Placed first in the pipeline, next to the socket.
final class FirstByteSignal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(BytesArrived())
        context.fireChannelRead(data)
    }
}

/// Closes connections that are idle too long, whose header block or body takes too long, and answers a declared
/// body larger than any route takes with `413` and closes at once, before a byte of it is read.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase: Equatable {
        /// Waiting for the next request since the instant given.
        case idle(since: NIODeadline)
        /// A request's header block is arriving since the instant given.
        case readingHead(since: NIODeadline)
        /// A body is arriving; its header block ended at the instant given.
        case readingBody(since: NIODeadline)
        /// The request is read; the response is being made. No deadline: that is the portal's own work.
        case responding
        /// Refused and closing: nothing more is read.
        case closing
    }

    private let limits: ConnectionLimits
    private var phase: Phase = .idle(since: .now())
    /// Requests whose header block was read and whose response has not ended.
    private var openRequests = 0
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(limits: ConnectionLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        self.phase = .idle(since: .now())
        self.schedule(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is BytesArrived {
            if case .idle = self.phase {
                self.phase = .readingHead(since: .now())
                self.schedule(context)
            } else if self.phase == .responding {
                // A pipelined request starts while the previous one is answered.
                self.phase = .readingHead(since: .now())
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.phase == .closing { return }
        let part = self.unwrapInboundIn(data)
        switch part {
        case .head(let request):
            if let declared = request.headerFields[.contentLength].flatMap(Int.init), declared > self.limits.maximumBodyBytes {
                self.refuseBody(context, declared: declared)
                return
            }
            self.openRequests += 1
            self.phase = .readingBody(since: .now())
        case .body:
            break
        case .end:
            if case .readingBody = self.phase { self.phase = .responding }
        }
        self.schedule(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) {
            self.openRequests = max(0, self.openRequests - 1)
            if self.openRequests == 0, self.phase == .responding {
                self.phase = .idle(since: .now())
                self.schedule(context)
            }
        }
        context.write(data, promise: promise)
    }

    /// The deadline of the current phase; `nil` while the portal answers.
    private var deadline: NIODeadline? {
        switch self.phase {
        case .idle(let since): since + TimeAmount(self.limits.idleTimeout)
        case .readingHead(let since): since + TimeAmount(self.limits.headerTimeout)
        case .readingBody(let since): since + TimeAmount(self.limits.bodyTimeout)
        case .responding, .closing: nil
        }
    }

    private func schedule(_ context: ChannelHandlerContext) {
        let deadline = self.deadline
        guard deadline != self.timerDeadline else { return }
        self.timer?.cancel()
        self.timer = nil
        self.timerDeadline = deadline
        guard let deadline else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) {
            self.timerFired(loopBound.value)
        }
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        self.timer = nil
        self.timerDeadline = nil
        guard let deadline = self.deadline else { return }
        guard deadline <= .now() else {
            self.schedule(context)
            return
        }
        let phase = self.phase
        self.phase = .closing
        if case .readingHead = phase, self.openRequests == 0 {
            // Nothing was answered on this request yet: say why before closing.
            self.answerAndClose(context, status: .requestTimeout, text: "the request took too long to arrive\n")
        } else {
            context.close(promise: nil)
        }
    }

    private func refuseBody(_ context: ChannelHandlerContext, declared: Int) {
        self.phase = .closing
        self.timer?.cancel()
        self.timer = nil
        self.answerAndClose(
            context, status: .contentTooLarge,
            text: "a request body here is at most \(self.limits.maximumBodyBytes) bytes; this one says \(declared)\n"
        )
    }

    private func answerAndClose(_ context: ChannelHandlerContext, status: HTTPResponse.Status, text: String) {
        let body = ByteBuffer(string: text)
        var fields = HTTPFields()
        fields[.contentType] = "text/plain; charset=utf-8"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        context.write(self.wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}

@available(*, unavailable)
extension RequestDeadlineHandler: Sendable {}
@available(*, unavailable)
extension FirstByteSignal: Sendable {}
@available(*, unavailable)
extension RefuseConnectionHandler: Sendable {}
