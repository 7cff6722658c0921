import AtelierDiffusion
import XCTest

final class TilingGridTests: XCTestCase {
    /// Every pixel is covered, nothing lies outside, tiles are aligned to 4, and neighbours share
    /// at least the requested overlap (exactly it, except the edge-aligned last pair).
    func testGridCoversTheImageExactlyWithTheRequestedOverlaps() throws {
        let cases: [(w: Int, h: Int, t: Int, o: Int)] = [
            (512, 512, 128, 32), (300, 200, 128, 32), (130, 131, 128, 32), (129, 64, 128, 16),
            (1024, 768, 128, 32), (97, 33, 32, 12), (1000, 999, 256, 0), (64, 64, 128, 32), (7, 5, 32, 8),
        ]
        for c in cases {
            let grid = try TileGrid(width: c.w, height: c.h, tile: c.t, overlap: c.o)
            var coverage = [Int](repeating: 0, count: c.w * c.h)
            for rect in grid.tiles {
                XCTAssertEqual(rect.x % 4, 0, "\(c)")
                XCTAssertEqual(rect.y % 4, 0, "\(c)")
                XCTAssertGreaterThan(rect.width, 0)
                XCTAssertLessThanOrEqual(rect.x + rect.width, c.w, "\(c)")
                XCTAssertLessThanOrEqual(rect.y + rect.height, c.h, "\(c)")
                if rect.x + rect.width < c.w { XCTAssertEqual(rect.width, c.t, "interior tiles are full size \(c)") }
                if rect.x + rect.width < c.w || c.w % 4 == 0 { XCTAssertEqual(rect.width % 4, 0, "\(c)") }
                for y in rect.y..<(rect.y + rect.height) {
                    for x in rect.x..<(rect.x + rect.width) { coverage[y * c.w + x] += 1 }
                }
            }
            XCTAssertFalse(coverage.contains(0), "every pixel covered \(c)")
            XCTAssertEqual(grid.tiles.count, grid.columns.count * grid.rows.count)
            for spans in [grid.columns, grid.rows] {
                XCTAssertEqual(spans.first?.origin, 0)
                for (a, b) in zip(spans, spans.dropFirst()) {
                    let shared = a.end - b.origin
                    XCTAssertGreaterThanOrEqual(shared, c.o, "\(c)")
                    XCTAssertEqual(a.trailingOverlap, shared)
                    XCTAssertEqual(b.leadingOverlap, shared)
                    XCTAssertGreaterThan(b.origin, a.origin)
                }
                for (i, span) in spans.enumerated() where i + 2 < spans.count {
                    XCTAssertEqual(span.trailingOverlap, c.o, "stride T−O away from the far edge \(c)")
                }
            }
        }
    }

    func testLastTileIsAlignedToTheFarEdgeAndSmallImagesAreOneTile() throws {
        let grid = try TileGrid(width: 300, height: 100, tile: 128, overlap: 32)
        XCTAssertEqual(grid.columns.map(\.origin), [0, 96, 172])
        XCTAssertEqual(grid.columns.map(\.length), [128, 128, 128])
        XCTAssertEqual(grid.columns.last?.end, 300)
        XCTAssertEqual(grid.rows.map(\.origin), [0])
        XCTAssertEqual(grid.rows.map(\.length), [100])

        let single = try TileGrid(width: 128, height: 128, tile: 128, overlap: 32)
        XCTAssertEqual(single.tiles, [TileRect(index: 0, column: 0, row: 0, x: 0, y: 0, width: 128, height: 128)])

        // 130 = 128 + 2: no near-duplicate tile, one tile stretched to the edge.
        let stretched = try TileGrid(width: 130, height: 10, tile: 128, overlap: 32)
        XCTAssertEqual(stretched.columns.map(\.origin), [0])
        XCTAssertEqual(stretched.columns.map(\.length), [130])

        // Side not a multiple of 4: the last origin rounds down, the tile runs to the edge.
        let odd = try TileGrid(width: 203, height: 64, tile: 64, overlap: 16)
        XCTAssertEqual(odd.columns.map(\.origin), [0, 48, 96, 136])
        XCTAssertEqual(odd.columns.last?.length, 67)
    }

    func testInvalidGridsAreRefusedWithReasons() {
        XCTAssertThrowsError(try TileGrid(width: 0, height: 10, tile: 64, overlap: 8))
        XCTAssertThrowsError(try TileGrid(width: 10, height: 10, tile: 30, overlap: 8))
        XCTAssertThrowsError(try TileGrid(width: 10, height: 10, tile: 64, overlap: 32)) { error in
            XCTAssertTrue("\(error)".contains("less than half"), "\(error)")
        }
        XCTAssertThrowsError(try TileGrid(width: 10, height: 10, tile: 64, overlap: 6))
    }

    func testCropCutsTheTileOut() throws {
        let w = 10, h = 6
        let pixels = (0..<(w * h)).map { UInt8($0) }
        let rect = TileRect(index: 0, column: 0, row: 0, x: 4, y: 2, width: 3, height: 2)
        XCTAssertEqual(try rect.crop(from: pixels, imageWidth: w, imageHeight: h, channels: 1), [24, 25, 26, 34, 35, 36])
        let outside = TileRect(index: 0, column: 0, row: 0, x: 8, y: 0, width: 4, height: 2)
        XCTAssertThrowsError(try outside.crop(from: pixels, imageWidth: w, imageHeight: h, channels: 1))
    }

    func testFeatherRampsSumToOneAcrossABandAndStayPositive() {
        let band = 8
        let left = TileFeather.weights(length: 32, leadingBand: 0, trailingBand: band)
        let right = TileFeather.weights(length: 32, leadingBand: band, trailingBand: 0)
        XCTAssertEqual(left.first, 1, "no feathering against the image border")
        XCTAssertEqual(right.last, 1)
        for i in 0..<band {
            XCTAssertEqual(left[32 - band + i] + right[i], 1, accuracy: 1e-12)
            XCTAssertGreaterThan(right[i], 0)
        }
        XCTAssertEqual(right[0], 0.5 / Double(band), accuracy: 1e-12)
    }
}
