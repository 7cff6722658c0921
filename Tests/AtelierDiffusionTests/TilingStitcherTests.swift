import AtelierDiffusion
import XCTest

final class TilingStitcherTests: XCTestCase {
    /// Nearest-neighbour upscale of a tile: stands in for the x4 upscaler in these tests.
    private func upscaleNearest(_ pixels: [UInt8], width: Int, height: Int, channels: Int, scale: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * scale * height * scale * channels)
        for y in 0..<(height * scale) {
            for x in 0..<(width * scale) {
                for c in 0..<channels {
                    out[(y * width * scale + x) * channels + c] = pixels[((y / scale) * width + x / scale) * channels + c]
                }
            }
        }
        return out
    }

    /// A smooth RGB image: linear ramps (the gradient is the same everywhere, so a seamless stitch
    /// has a seam ratio of about 1). Sides up to 256.
    private func smoothImage(width: Int, height: Int) -> [UInt8] {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                p[i] = UInt8(x)
                p[i + 1] = UInt8(y)
                p[i + 2] = UInt8((x + y) / 2)
            }
        }
        return p
    }

    /// Pseudo-random RGB bytes (SplitMix64), for exactness checks on detailed content.
    private func noiseImage(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<(width * height * 3)).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }

    private func stitchCrops(of image: [UInt8], grid: TileGrid, scale: Int, order: [Int]? = nil) throws -> TileStitcher {
        let big = upscaleNearest(image, width: grid.width, height: grid.height, channels: 3, scale: scale)
        var stitcher = try TileStitcher(width: grid.width * scale, height: grid.height * scale, channels: 3,
                                        scale: scale, grid: grid)
        for index in order ?? Array(grid.tiles.indices) {
            let rect = grid.tiles[index]
            let scaled = TileRect(index: index, column: rect.column, row: rect.row, x: rect.x * scale, y: rect.y * scale,
                                  width: rect.width * scale, height: rect.height * scale)
            let crop = try scaled.crop(from: big, imageWidth: grid.width * scale, imageHeight: grid.height * scale, channels: 3)
            try stitcher.add(tileIndex: index, pixels: crop)
        }
        return stitcher
    }

    func testIdenticalTilesOfAConstantImageStitchToTheConstant() throws {
        let grid = try TileGrid(width: 100, height: 70, tile: 32, overlap: 8)
        var stitcher = try TileStitcher(grid: grid, channels: 3, scale: 4)
        for rect in grid.tiles {
            let count = rect.width * 4 * rect.height * 4
            var tile = [UInt8](repeating: 0, count: count * 3)
            for i in 0..<count { tile[3 * i] = 17; tile[3 * i + 1] = 200; tile[3 * i + 2] = 255 }
            try stitcher.add(tileIndex: rect.index, pixels: tile)
        }
        let image = try stitcher.image()
        XCTAssertEqual(image.count, 400 * 280 * 3)
        for i in stride(from: 0, to: image.count, by: 3) {
            guard image[i] == 17, image[i + 1] == 200, image[i + 2] == 255 else {
                return XCTFail("pixel \(i / 3) is \(image[i]),\(image[i + 1]),\(image[i + 2])")
            }
        }
        XCTAssertEqual(try stitcher.seamRatio(), 1, accuracy: 1e-6, "a flat image has no seams")
    }

    func testStitchingCropsOfOneImageGivesThatImageBackExactly() throws {
        for (w, h, t, o, scale) in [(150, 97, 64, 16, 4), (203, 131, 32, 12, 1), (64, 64, 32, 0, 2)] {
            let grid = try TileGrid(width: w, height: h, tile: t, overlap: o)
            let image = noiseImage(width: w, height: h, seed: UInt64(w))
            let stitcher = try stitchCrops(of: image, grid: grid, scale: scale)
            XCTAssertEqual(try stitcher.image(), upscaleNearest(image, width: w, height: h, channels: 3, scale: scale),
                           "\(w)x\(h) tile \(t) overlap \(o) x\(scale)")
        }
    }

    func testStitchIsIdenticalWhateverOrderTilesArriveIn() throws {
        let grid = try TileGrid(width: 97, height: 83, tile: 32, overlap: 12)
        // Tiles that disagree in the overlaps, so the blend actually mixes values.
        func tiles() -> [[UInt8]] {
            grid.tiles.map { rect in
                let n = rect.width * 4 * rect.height * 4 * 3
                return noiseImage(width: n / 3, height: 1, seed: UInt64(rect.index + 1))
            }
        }
        let pixels = tiles()
        var forward = try TileStitcher(grid: grid, channels: 3, scale: 4)
        for i in grid.tiles.indices { try forward.add(tileIndex: i, pixels: pixels[i]) }
        var backward = try TileStitcher(grid: grid, channels: 3, scale: 4)
        for i in grid.tiles.indices.reversed() { try backward.add(tileIndex: i, pixels: pixels[i]) }
        var shuffled = try TileStitcher(grid: grid, channels: 3, scale: 4)
        var generator = SystemRandomNumberGenerator()
        for i in grid.tiles.indices.shuffled(using: &generator) { try shuffled.add(tileIndex: i, pixels: pixels[i]) }
        let reference = try forward.image()
        XCTAssertEqual(try backward.image(), reference)
        XCTAssertEqual(try shuffled.image(), reference)
    }

    /// Blending rows as tiles arrive top to bottom gives the same bytes as stitching at the end,
    /// while holding no more than two grid rows of tiles at any time.
    func testEagerRowBlendingIsExactAndHoldsAboutOneGridRowOfTiles() throws {
        let grid = try TileGrid(width: 97, height: 131, tile: 32, overlap: 12)
        XCTAssertGreaterThanOrEqual(grid.rows.count, 4)
        let pixels = grid.tiles.map { rect in
            noiseImage(width: rect.width * 4 * rect.height * 4, height: 1, seed: UInt64(rect.index + 7))
        }
        var lazy = try TileStitcher(grid: grid, channels: 3, scale: 4)
        var eager = try TileStitcher(grid: grid, channels: 3, scale: 4)
        var mostHeld = 0
        for i in grid.tiles.indices {
            try lazy.add(tileIndex: i, pixels: pixels[i])
            try eager.add(tileIndex: i, pixels: pixels[i])
            eager.blendFinishedRows()
            mostHeld = max(mostHeld, eager.heldTileCount)
        }
        XCTAssertEqual(lazy.heldTileCount, grid.tiles.count)
        XCTAssertLessThanOrEqual(mostHeld, 2 * grid.columns.count, "eager blending kept tiles it had finished with")
        XCTAssertEqual(try eager.image(), try lazy.image())
        XCTAssertEqual(try eager.seamRatio(), try lazy.seamRatio())

        // Out of order, blending whenever possible: still the same bytes.
        var shuffled = try TileStitcher(grid: grid, channels: 3, scale: 4)
        var generator = SystemRandomNumberGenerator()
        for i in grid.tiles.indices.shuffled(using: &generator) {
            try shuffled.add(tileIndex: i, pixels: pixels[i])
            shuffled.blendFinishedRows()
        }
        XCTAssertEqual(try shuffled.image(), try lazy.image())

        // A partial eager stitch still reports what is missing.
        var partial = try TileStitcher(grid: grid, channels: 3, scale: 4)
        for i in 0..<grid.columns.count { try partial.add(tileIndex: i, pixels: pixels[i]); partial.blendFinishedRows() }
        XCTAssertThrowsError(try partial.image())
        XCTAssertEqual(partial.missingTileIndices, Array(grid.columns.count..<grid.tiles.count))
    }

    func testSeamRatioIsAboutOneForASmoothImageAndLargeWhenTilesDisagree() throws {
        // 244 = 0, 60, 120, 180 (+64): every band is exactly the 4-pixel overlap.
        let grid = try TileGrid(width: 244, height: 184, tile: 64, overlap: 4)
        let smooth = try stitchCrops(of: smoothImage(width: 244, height: 184), grid: grid, scale: 1)
        let smoothRatio = try smooth.seamRatio()
        XCTAssertEqual(smoothRatio, 1, accuracy: 0.25, "seamless: \(smoothRatio)")

        // Each tile a different flat colour: every seam is a visible ramp.
        var disagreeing = try TileStitcher(grid: grid, channels: 3, scale: 1)
        for rect in grid.tiles {
            let value = UInt8(40 + (rect.index * 53) % 180)
            try disagreeing.add(tileIndex: rect.index,
                                pixels: [UInt8](repeating: value, count: rect.width * rect.height * 3))
        }
        let seamRatio = try disagreeing.seamRatio()
        XCTAssertGreaterThan(seamRatio, 5, "tiles that disagree: \(seamRatio)")
    }

    func testMissingAndMisshapenTilesAreReported() throws {
        let grid = try TileGrid(width: 64, height: 64, tile: 32, overlap: 8)
        var stitcher = try TileStitcher(grid: grid, channels: 3, scale: 4)
        XCTAssertThrowsError(try stitcher.image()) { error in
            XCTAssertEqual(error as? TilingError, .missingTiles(Array(grid.tiles.indices)))
        }
        XCTAssertThrowsError(try stitcher.add(tileIndex: 0, pixels: [1, 2, 3]))
        XCTAssertThrowsError(try stitcher.add(tileIndex: 99, pixels: []))
        XCTAssertThrowsError(try TileStitcher(width: 10, height: 10, channels: 3, scale: 4, grid: grid))
    }
}
