/// Blends upscaled tiles of a `TileGrid` into one image.
///
/// Tiles arrive in OUTPUT pixels: tile `i` is `grid.tiles[i]` scaled by `scale` (4 for the x4
/// upscaler), `width * scale × height * scale × channels` bytes, row-major and interleaved.
/// Each output pixel is the weighted mean of the tiles covering it, with `TileFeather` weights
/// (product of the column and row ramps), rounded half-to-even and clamped to 0…255.
///
/// Exact order independence: tiles may be added in any order (on the farm they complete in
/// whatever order workers finish), but floating-point sums depend on the order of their terms.
/// So `add` only keeps the tile, and `image()` accumulates in Double in tile-index order, one
/// output row at a time. The result is bit-identical however the tiles arrived, and memory
/// stays at the tiles themselves plus one row of accumulators (a full-image Double buffer of a
/// 4096² output would be 400 MB).
public struct TileStitcher: Sendable {
    public let grid: TileGrid
    public let channels: Int
    public let scale: Int
    /// Output size: the grid's image size times `scale`.
    public let outputWidth: Int
    public let outputHeight: Int

    private var tilePixels: [[UInt8]?]

    public init(grid: TileGrid, channels: Int, scale: Int) throws {
        guard (1...4).contains(channels) else {
            throw TilingError.invalidBuffer("channels must be 1…4, got \(channels)")
        }
        guard (1...16).contains(scale) else {
            throw TilingError.invalidBuffer("scale must be 1…16, got \(scale)")
        }
        self.grid = grid
        self.channels = channels
        self.scale = scale
        self.outputWidth = grid.width * scale
        self.outputHeight = grid.height * scale
        self.tilePixels = Array(repeating: nil, count: grid.tiles.count)
    }

    /// `width`/`height` are the OUTPUT size and must equal the grid's size times `scale`; they are
    /// taken (and checked) so that callers state what they expect to get back.
    public init(width: Int, height: Int, channels: Int, scale: Int, grid: TileGrid) throws {
        try self.init(grid: grid, channels: channels, scale: scale)
        guard width == outputWidth, height == outputHeight else {
            throw TilingError.invalidBuffer(
                "output size \(width)x\(height) does not match the \(grid.width)x\(grid.height) grid at scale \(scale) "
                + "(\(outputWidth)x\(outputHeight))")
        }
    }

    /// Keeps tile `tileIndex`'s upscaled pixels. Adding an index again replaces the earlier pixels.
    public mutating func add(tileIndex: Int, pixels: [UInt8]) throws {
        guard grid.tiles.indices.contains(tileIndex) else {
            throw TilingError.unknownTile(index: tileIndex, tileCount: grid.tiles.count)
        }
        let rect = grid.tiles[tileIndex]
        let expected = rect.width * scale * rect.height * scale * channels
        guard pixels.count == expected else {
            throw TilingError.wrongTileSize(
                index: tileIndex, expected: expected, got: pixels.count,
                detail: "\(rect.width * scale)x\(rect.height * scale)x\(channels) for the \(rect.width)x\(rect.height) tile at x\(scale)")
        }
        tilePixels[tileIndex] = pixels
    }

    public var isComplete: Bool { tilePixels.allSatisfy { $0 != nil } }

    /// Indices of the tiles not added yet, ascending.
    public var missingTileIndices: [Int] { tilePixels.indices.filter { tilePixels[$0] == nil } }

    /// The stitched image, `outputWidth × outputHeight × channels` bytes. Throws if tiles are missing.
    public func image() throws -> [UInt8] {
        let missing = missingTileIndices
        guard missing.isEmpty else { throw TilingError.missingTiles(missing) }

        let columnWeights = grid.columns.map { TileFeather.weights(for: $0, scale: scale) }
        let rowWeights = grid.rows.map { TileFeather.weights(for: $0, scale: scale) }
        let width = outputWidth, c = channels
        var out = [UInt8](repeating: 0, count: outputWidth * outputHeight * c)
        var sum = [Double](repeating: 0, count: width * c)
        var weight = [Double](repeating: 0, count: width)

        for y in 0..<outputHeight {
            for i in sum.indices { sum[i] = 0 }
            for i in weight.indices { weight[i] = 0 }
            for (r, row) in grid.rows.enumerated() {
                let v = y - row.origin * scale
                guard v >= 0, v < row.length * scale else { continue }
                let wy = rowWeights[r][v]
                for (col, column) in grid.columns.enumerated() {
                    guard let tile = tilePixels[r * grid.columns.count + col] else { continue }
                    let tileWidth = column.length * scale
                    let x0 = column.origin * scale
                    let wx = columnWeights[col]
                    tile.withUnsafeBufferPointer { src in
                        let base = v * tileWidth * c
                        for u in 0..<tileWidth {
                            let w = wx[u] * wy
                            let x = x0 + u
                            weight[x] += w
                            for ch in 0..<c {
                                sum[x * c + ch] += w * Double(src[base + u * c + ch])
                            }
                        }
                    }
                }
            }
            let rowBase = y * width * c
            for x in 0..<width {
                let w = weight[x]
                for ch in 0..<c {
                    let value = w > 0 ? (sum[x * c + ch] / w).rounded(.toNearestOrEven) : 0
                    out[rowBase + x * c + ch] = UInt8(min(max(value, 0), 255))
                }
            }
        }
        return out
    }

    /// Where the seams are: the centre line of every overlap band, in output pixels. For a band
    /// starting at output column s with width B the line is s + B/2 − 1, the pixel whose forward
    /// difference (to s + B/2) straddles the band's centre, where the two tiles weigh the same.
    /// (With no overlap, B = 0, that is the last pixel before the tile boundary.)
    public var seamLines: (columns: [Int], rows: [Int]) {
        func centres(_ spans: [TileSpan]) -> [Int] {
            spans.dropLast().map { span in
                let band = span.trailingOverlap * scale
                return max((span.end * scale - band) + band / 2 - 1, 0)
            }
        }
        return (centres(grid.columns), centres(grid.rows))
    }

    /// The seam metric of the stitched image (see `SeamMetric`); throws if tiles are missing.
    public func seamRatio() throws -> Double {
        try seamRatio(of: image())
    }

    /// The seam metric of an image already produced by `image()`, to avoid stitching twice.
    public func seamRatio(of pixels: [UInt8]) throws -> Double {
        let lines = seamLines
        return try SeamMetric.ratio(pixels: pixels, width: outputWidth, height: outputHeight, channels: channels,
                                    seamColumns: lines.columns, seamRows: lines.rows)
    }
}
