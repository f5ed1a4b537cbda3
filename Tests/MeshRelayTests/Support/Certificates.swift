import KiezboxTestSupport
import Foundation

/// A throw-away PKI made with the `openssl` command line tool: a CA, a server certificate for
/// 127.0.0.1/localhost signed by it, a client certificate signed by it, and an unrelated second CA.
struct TestCertificates: Sendable {
    let directory: URL

    var caCertificate: String { self.path("ca.crt") }
    var otherCACertificate: String { self.path("other-ca.crt") }
    var serverCertificate: String { self.path("server.crt") }
    var serverKey: String { self.path("server.key") }
    var clientCertificate: String { self.path("client.crt") }
    var clientKey: String { self.path("client.key") }

    func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }

    static func make() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        func openssl(_ arguments: String...) throws { try runTool("/usr/bin/openssl", arguments, in: directory) }
        let ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "/CN=Kiezbox Test CA"), ("other-ca", "/CN=Somebody Else's CA")] {
            try runTool(
                "/usr/bin/openssl",
                ["req", "-x509"] + ecKey + ["-keyout", "\(name).key", "-out", "\(name).crt", "-days", "2", "-subj", subject],
                in: directory)
        }
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(
            to: directory.appendingPathComponent("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(
            to: directory.appendingPathComponent("client.ext"), atomically: true, encoding: .utf8)
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=kiezbox-xhain-box-01")] {
            try runTool(
                "/usr/bin/openssl", ["req"] + ecKey + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject],
                in: directory)
            try openssl(
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext")
        }
        return certificates
    }

    func remove() { try? FileManager.default.removeItem(at: self.directory) }
}
