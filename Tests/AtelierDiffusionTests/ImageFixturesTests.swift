import Foundation
import XCTest

/// Shared support for the image tests: the committed fixtures (written by
/// Tests/Reference/image/make_image_fixtures.py from Pillow, numpy, torch and diffusers) and the
/// deterministic inputs both sides generate instead of storing them.
enum ImageFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("image")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }

    /// `make_input("noise", …)`: an LCG byte stream (Numerical Recipes constants, top byte).
    static func noise(width: Int, height: Int, channels: Int, seed: UInt32) -> [UInt8] {
        var state = seed
        return (0..<(width * height * channels)).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(state >> 24)
        }
    }

    /// `make_input("pattern", …)`: gradients, blocks and wrap-around edges.
    static func pattern(width: Int, height: Int, channels: Int, seed: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    out[(y * width + x) * channels + c] =
                        UInt8((x * 3 + y * 5 + c * 85 + (x / 7) * (y / 5) * 11 + seed) % 256)
                }
            }
        }
        return out
    }

    static func input(_ kind: String, width: Int, height: Int, channels: Int, seed: Int) -> [UInt8] {
        kind == "noise" ? noise(width: width, height: height, channels: channels, seed: UInt32(seed))
                        : pattern(width: width, height: height, channels: channels, seed: seed)
    }

    /// `lcg_floats(count, seed)`: uniform in [−1, 1), exact in float32.
    static func floats(count: Int, seed: UInt32) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            let u = Float(state >> 8) / Float(1 << 24)
            return -1 + u * 2
        }
    }

    static func fnv1a64<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return String(format: "%016llx", h)
    }

    static func bytes(of floats: [Float]) -> [UInt8] {
        floats.flatMap { v -> [UInt8] in
            let b = v.bitPattern
            return [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
        }
    }

    /// A scratch directory removed at the end of the test.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("atelier-image-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

/// Checks that the Swift input generators reproduce the Python ones, so hash comparisons test the
/// resampler and not the inputs.
final class ImageFixturesTests: XCTestCase {
    func testGeneratorsMatchPython() {
        // Values printed by make_image_fixtures.py's generators.
        XCTAssertEqual(ImageFixtures.noise(width: 4, height: 1, channels: 3, seed: 1),
                       [60, 94, 129, 180, 12, 94, 198, 142, 4, 163, 64, 108])
        let p = ImageFixtures.pattern(width: 9, height: 6, channels: 3, seed: 6)
        XCTAssertEqual(Array(p[(5 * 9 + 8) * 3..<(5 * 9 + 8) * 3 + 3]), [66, 151, 236])
        XCTAssertEqual(ImageFixtures.fnv1a64(Array("atelier".utf8)), "e469717a1cb3714f")
        XCTAssertEqual(ImageFixtures.floats(count: 4, seed: 31),
                       [-0.503835916519165, -0.8192328214645386, -0.9090197086334229, 0.6307483911514282])
    }

    func testFixturesStaySmall() throws {
        let files = FileManager.default.enumerator(at: ImageFixtures.directory, includingPropertiesForKeys: [.fileSizeKey])
        var total = 0
        while let url = files?.nextObject() as? URL {
            total += try url.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0
        }
        XCTAssertGreaterThan(total, 0, "fixtures missing; run Tests/Reference/image/make_image_fixtures.py")
        XCTAssertLessThan(total, 1 << 20, "image fixtures should stay under 1 MB")
    }
}
