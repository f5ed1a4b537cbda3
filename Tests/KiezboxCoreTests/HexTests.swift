import KiezboxCore
import Testing

@Suite("Hex")
struct HexTests {
    @Test("bytes to hex and back, either case; odd counts and other characters refused")
    func roundTrip() {
        let key: [UInt8] = [0x2B, 0x7E, 0x15, 0x16, 0x00, 0xFF]
        #expect(Hex.encode(key) == "2B7E151600FF")
        #expect(Hex.encode(key, uppercase: false) == "2b7e151600ff")
        #expect(Hex.decode("2B7E151600FF") == key)
        #expect(Hex.decode("2b7e151600ff") == key)
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("2B7") == nil)
        #expect(Hex.decode("2G") == nil)
        #expect(Hex.decode("2B 7E") == nil)
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...40)).map { _ in UInt8.random(in: 0...255) }
            #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        }
    }
}
