import Foundation
import XCTest
@testable import AtelierDiffusion

/// The ftfy port (`FtfyFixText`, used by `CLIPTextCleaning.ftfy`) against ftfy 6.3.1: its
/// documented examples, and 400 generated mojibake strings from the corpus.
final class TokenizerFtfyTests: XCTestCase {
    private func fix(_ text: String) -> String { FtfyFixText.fixText(text) }

    func testMojibakeIsDecoded() {
        XCTAssertEqual(fix("Ã©tÃ©"), "été")
        XCTAssertEqual(fix("âœ” No problems"), "✔ No problems")
        XCTAssertEqual(fix("The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows."), "The Mona Lisa doesn't have eyebrows.")
        XCTAssertEqual(fix("voilÃ le travail"), "voilà le travail")
        XCTAssertEqual(fix("ÐŸÑ€Ð¸Ð²ÐµÑ‚"), "Привет")
    }

    func testHTMLEntitiesFollowFtfyRules() {
        XCTAssertEqual(fix("&amp; &lt;b&gt; &#39;"), "& <b> '")
        XCTAssertEqual(fix("&amp;lt;"), "<", "fixed point: unescaped until nothing changes")
        XCTAssertEqual(fix("P&EACUTE;REZ"), "PÉREZ")
        XCTAssertEqual(fix("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "ñ Ñ Ñ &nTILDE;")
        XCTAssertEqual(fix("&#59;"), "&#59;", "a reference that decodes to ';' is kept")
        XCTAssertEqual(fix("salt &amp pepper"), "salt &amp pepper", "no semicolon, no unescaping")
        XCTAssertEqual(fix("a < b &amp; c"), "a < b &amp; c", "a line with '<' is treated as HTML")
        XCTAssertEqual(fix("&lt;x&gt;\nsecond &amp;"), "<x>\nsecond &",
                       "only literal '<' disables unescaping, for that line and the following ones")
        XCTAssertEqual(fix("x <\ny &amp;"), "x <\ny &amp;")
    }

    func testTypographyIsNormalised() {
        XCTAssertEqual(fix("“here’s a test”"), "\"here's a test\"")
        XCTAssertEqual(fix("ﬂuﬃeﬆ"), "fluffiest")
        XCTAssertEqual(fix("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES")
        XCTAssertEqual(fix("Ｕﾀｰﾝ"), "Uターン")
        XCTAssertEqual(fix("cafe\u{301}").unicodeScalars.count, 4, "NFC")
    }

    func testControlCharactersAndLineBreaks() {
        XCTAssertEqual(fix("\u{1B}[36;44mI'm blue\u{1B}[0m"), "I'm blue")
        XCTAssertEqual(Array(fix("a\r\nb\rc\u{2028}d").unicodeScalars), Array("a\nb\nc\nd".unicodeScalars))
        XCTAssertEqual(fix("\u{FEFF}a\u{0}b\u{7F}c\td"), "abc\td")
    }

    func testGeneratedMojibakeMatchesFtfy() throws {
        let data = try Data(contentsOf: TokenizerCorpus.url)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(root["ftfy_cases"] as? [[String]])
        XCTAssertGreaterThanOrEqual(cases.count, 400)
        var failures = 0
        for pair in cases where pair.count == 2 {
            let fixed = fix(pair[0])
            if Array(fixed.unicodeScalars) != Array(pair[1].unicodeScalars) {
                failures += 1
                if failures <= 20 {
                    XCTFail("input:    \(scalarDump(pair[0]))\nexpected: \(scalarDump(pair[1]))\nactual:   \(scalarDump(fixed))")
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) differ from ftfy.fix_text")
    }
}
