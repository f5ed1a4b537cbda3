import EmergencyPortal
import Foundation
import ReadingStore
import Testing

/// Posts limited in bytes and in combining marks, and a front page no single post can empty.
@Suite("Bulletin post limits")
struct BulletinLimitsTests {
    /// "Hilfe" and 16 KB of invisible variation selectors: five characters as people count.
    static let variationSelectorPost = "Hilf" + String(String.UnicodeScalarView((0..<5300).map { Unicode.Scalar(0xFE00 + UInt32($0 % 16))! }))
    /// Five letters under about 590 stacked combining marks each (5.9 KB).
    static let zalgoPost = String(
        String.UnicodeScalarView("HILFE".unicodeScalars.flatMap { letter in [letter] + (0..<590).map { Unicode.Scalar(0x0300 + UInt32($0 % 0x70))! } }))

    /// A form body with the text as raw UTF-8 (the form decoder accepts it, and it stays within the 16 KiB body).
    static func rawBody(text: String, token: String) -> [UInt8] {
        Array("kind=request&category=other&token=\(token)&text=".utf8) + Array(text.utf8)
    }

    @Test("variation selectors and stacked marks are refused (bytes, marks per character); real scripts and emoji pass")
    func limits() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(1)
            let page = try await phone.get("/", host: "kiez.box")
            let token = try BulletinTests.formToken(in: page.text)
            for hostile in [Self.variationSelectorPost, Self.zalgoPost] {
                #expect(hostile.count <= BulletinFormContext.maxTextLength)
                let answer = try await phone.post("/bulletin", host: "kiez.box", contentType: BulletinTests.form, body: Self.rawBody(text: hostile, token: token))
                #expect(answer.status == 400, "\(hostile.utf8.count) bytes of \(hostile.count) characters")
            }
            #expect(try portal.store.openBulletinPosts(at: portal.clock.now).isEmpty)
            // Decomposed Vietnamese (NFC folds it), Devanagari conjuncts, Thai tone marks, a ZWJ family emoji.
            let genuine = [
                "Ca\u{0302}\u{0300}n nu\u{031B}o\u{031B}\u{0301}c sa\u{0323}ch", "स्त्री को दवा चाहिए", "ต้องการน้ำดื่ม", "👨‍👩‍👧‍👦 alle sicher",
                String(repeating: "🆘", count: BulletinFormContext.maxTextLength),
            ]
            for (index, text) in genuine.enumerated() {
                let sender = portal.phone(10 + index)
                let token = try BulletinTests.formToken(in: try await sender.get("/", host: "kiez.box").text)
                let answer = try await sender.post(
                    "/bulletin", host: "kiez.box", contentType: BulletinTests.form,
                    body: BulletinTests.encode([("kind", "request"), ("category", "water"), ("text", text), ("token", token)]))
                #expect(answer.status == 303, "\(text)")
            }
        }
    }

    @Test("a huge post stored before the limits does not empty the front page: the posts after it are shown")
    func frontPageSkipsHugePost() async throws {
        try await withRunningPortal { portal in
            let now = portal.clock.now
            for number in 1...3 {
                _ = try await portal.store.addBulletinPost(
                    kind: .offer, category: .food, text: "Suppe \(number) im Hof", place: "", createdAt: now, expiresAt: now.addingTimeInterval(3600))
            }
            // Newest: what the old limit let through (16 KB in "4 characters").
            _ = try await portal.store.addBulletinPost(
                kind: .request, category: .other, text: Self.variationSelectorPost, place: "", createdAt: now, expiresAt: now.addingTimeInterval(3600))
            let page = try await portal.phone(2).get("/?lang=de", host: "kiez.box")
            #expect(page.body.count <= InfoPage.byteBudget + 64)
            for number in 1...3 { #expect(page.text.contains("Suppe \(number) im Hof")) }
        }
    }
}
