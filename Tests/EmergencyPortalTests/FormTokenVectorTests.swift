import Crypto
import EmergencyPortal
import Foundation
import Testing

@Suite("Form tokens against an independently computed vector")
struct FormTokenVectorTests {
    /// Key bytes 0x00…0x1f, issued 2026-01-01T00:00:00Z to 10.42.0.7. The expected token was computed outside Swift
    /// (HMAC-SHA256 of "10.42.0.7" ‖ 0x00 ‖ issue time, first 16 bytes, after the 8-byte issue time, base64url);
    /// its standard base64 form, AAAAAGlVuQBx0BO/S8e7y5+I2dDqABI4, has both a '+' and a '/' to map.
    private let tokens = FormTokens(key: SymmetricKey(data: Array(UInt8(0)..<32)))
    private let issued = Date(timeIntervalSince1970: 1_767_225_600)

    @Test("the token is the issue time and the truncated HMAC, base64url without padding")
    func vector() {
        #expect(self.tokens.issue(for: "10.42.0.7", at: self.issued) == "AAAAAGlVuQBx0BO_S8e7y5-I2dDqABI4")
    }

    @Test("the token is valid for its client within the lifetime, and for no other client")
    func roundTrip() {
        let token = self.tokens.issue(for: "10.42.0.7", at: self.issued)
        #expect(self.tokens.isValid(token, for: "10.42.0.7", at: self.issued.addingTimeInterval(60)))
        #expect(!self.tokens.isValid(token, for: "10.42.0.8", at: self.issued.addingTimeInterval(60)))
        #expect(!self.tokens.isValid(token, for: "10.42.0.7", at: self.issued.addingTimeInterval(self.tokens.lifetime + 1)))
    }
}
