#if canImport(Glibc)
import KiezboxCore
import SensorDrivers
import Testing

private enum Report {
    static let devices =
        #"{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/serial0","driver":"NMEA0183","activated":"2026-01-14T12:00:00.000Z","native":0,"bps":9600,"parity":"N","stopbits":1,"cycle":1.00}]}"#
    static let watch = #"{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,"timing":false,"split24":false,"pps":false}"#
    static let noFix = #"{"class":"TPV","device":"/dev/serial0","mode":1}"#
    static let garbage = #"{"class":"TPV","mode":3,"lat":52.5,"lon"#
    static let sky = #"{"class":"SKY","device":"/dev/serial0","hdop":0.9,"satellites":[{"PRN":5,"el":45.0,"az":120.0,"ss":38.0,"used":true}]}"#
    static let fix3D =
        #"{"class":"TPV","device":"/dev/serial0","mode":3,"time":"2026-01-14T12:35:19.000Z","ept":0.005,"lat":52.500812,"lon":13.436305,"altHAE":82.8,"altMSL":38.2,"alt":38.2,"epx":3.1,"epy":4.2,"speed":0.01,"track":0.0}"#
    static let fix2D = #"{"class":"TPV","device":"/dev/serial0","mode":2,"lat":-33.856784,"lon":151.215297}"#
    static let oldGPSD = #"{"class":"TPV","tag":"GGA","device":"/dev/ttyUSB0","mode":3,"lat":48.1173,"lon":11.516667,"alt":545.4}"#
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

@Suite("gpsd client against a fake gpsd on 127.0.0.1")
struct GPSDTests {
    /// Runs `client` against a fake gpsd that sends `lines` after the WATCH command.
    private func withServer<T>(
        lines: [String],
        greet: Bool = true,
        hangUp: Bool = false,
        configure: (inout GPSD.Configuration) -> Void = { _ in },
        _ body: (GPSD) async throws -> T
    ) async throws -> (T, String) {
        let server = try FakeGPSDServer()
        defer { server.close() }
        let serving = Task { await server.serveOneClient(lines: lines, greet: greet, hangUp: hangUp) }
        var configuration = GPSD.Configuration(port: server.port)
        configure(&configuration)
        let result = try await body(GPSD(configuration: configuration))
        await serving.value
        return (result, server.receivedText)
    }

    @Test("WATCH is sent; a no-fix TPV, a garbage line and a SKY report are skipped; the 3D fix is read")
    func fix() async throws {
        let ((values, malformed), sent) = try await self.withServer(
            lines: [Report.devices, Report.watch, Report.noFix, Report.garbage, Report.sky, Report.fix3D]
        ) { gps in
            (try await gps.measure(), gps.malformedLineCount)
        }
        #expect(sent == #"?WATCH={"enable":true,"json":true}"# + "\n")
        #expect(values == [MeasuredValue(.latitude, 52.500812), MeasuredValue(.longitude, 13.436305), MeasuredValue(.altitude, 38.2)])
        #expect(malformed == 1)
    }

    @Test("a 2D fix gives latitude and longitude only")
    func fix2D() async throws {
        let (values, _) = try await self.withServer(lines: [Report.fix2D]) { try await $0.measure() }
        #expect(values.map(\.quantity) == [.latitude, .longitude])
        #expect(value(.longitude, in: values)?.value == 151.215297)
    }

    @Test("an old gpsd's `alt` is used when `altMSL` is missing")
    func oldAltitude() async throws {
        let (values, _) = try await self.withServer(lines: [Report.oldGPSD]) { try await $0.measure() }
        #expect(value(.altitude, in: values)?.value == 545.4)
    }

    @Test("only no-fix reports: noFix, never a position")
    func noFix() async throws {
        let lines = Array(repeating: Report.noFix, count: 6)
        _ = try await self.withServer(lines: lines, configure: { $0.maximumReports = 5 }) { gps in
            let error = await #expect(throws: GPSDError.self) { try await gps.measure() }
            #expect(error?.code == .noFix(mode: 1))
            #expect(error?.endpoint.hasPrefix("127.0.0.1:") == true)
        }
    }

    @Test("a gpsd that closes the connection: .closed")
    func closed() async throws {
        // A read timeout far beyond the hang-up: on a busy machine only the hang-up may end the wait.
        _ = try await self.withServer(lines: [Report.noFix], hangUp: true, configure: { $0.readTimeout = .seconds(120) }) { gps in
            let error = await #expect(throws: GPSDError.self) { try await gps.measure() }
            #expect(error?.code == .closed)
        }
    }

    @Test("a gpsd that says nothing: .silent after the read timeout")
    func silent() async throws {
        _ = try await self.withServer(lines: [], greet: false, configure: { $0.readTimeout = .milliseconds(100) }) { gps in
            let error = await #expect(throws: GPSDError.self) { try await gps.measure() }
            #expect(error?.code == .silent)
        }
    }

    @Test("nothing listening: .notRunning, telling the resident to start gpsd")
    func notRunning() async throws {
        let server = try FakeGPSDServer()
        let port = server.port
        server.close()
        let gps = GPSD(configuration: .init(port: port))
        let error = await #expect(throws: GPSDError.self) { try await gps.measure() }
        #expect(error?.code == .notRunning)
        #expect(error?.description.contains("systemctl") == true)
    }

    @Test("a host that is not an IPv4 address is a typed error")
    func invalidHost() async {
        let gps = GPSD(configuration: .init(host: "gpsd.local"))
        await #expect(throws: GPSDError(.invalidHost, endpoint: "gpsd.local:2947")) { try await gps.measure() }
    }

    @Test("coordinates off the earth are flagged implausible")
    func offEarth() async throws {
        let (values, _) = try await self.withServer(lines: [#"{"class":"TPV","mode":2,"lat":91.5,"lon":200}"#]) { try await $0.measure() }
        #expect(values.allSatisfy { $0.quality == .implausible })
    }
}

#endif
