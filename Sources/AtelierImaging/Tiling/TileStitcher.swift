/// Blends upscaled tiles of a `TileGrid` into one image.
///
/// Tiles arrive in OUTPUT pixels: tile `i` is `grid.tiles[i]` scaled by `scale` (4 for the x4
/// upscaler), `width * scale × height * scale × channels` bytes, row-major and interleaved.
/// Each output pixel is the weighted mean of the tiles covering it, with `TileFeather` weights
/// (product of the column and row ramps), rounded half-to-even and clamped to 0…255.
///
/// Exact order independence: tiles may be added in any order (on the farm they complete in
/// whatever order workers finish), but floating-point sums depend on the order of their terms.
/// So `add` only keeps the tile, and each output row is accumulated in Double in tile-index
/// order, one row at a time, once every tile covering it is in. The result is bit-identical
/// however the tiles arrived, and memory stays at the tiles plus one row of accumulators (a
/// full-image Double buffer of a 4096² output would be 400 MB).
///
/// A producer that adds tiles top to bottom and never replaces one (the local tiled upscale)
/// calls `blendFinishedRows()` after each `add`: the covered rows go into the output and the
/// tiles wholly above them are dropped, so it holds the output bytes plus about one grid row of
/// tiles instead of every tile (95 MB of tiles for a 4096² output).
public struct TileStitcher: Sendable {
    public let grid: TileGrid
    public let channels: Int
    public let scale: Int
    /// Output size: the grid's image size times `scale`.
    public let outputWidth: Int
    public let outputHeight: Int

    private var tilePixels: [[UInt8]?]
    /// Which tiles were added (`blendFinishedRows` may since have dropped their pixels).
    private var received: [Bool]
    /// The output, allocated by the first `blendFinishedRows`; rows `0..<finishedRows` are final.
    private var output: [UInt8] = []
    private var finishedRows = 0

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
        self.received = Array(repeating: false, count: grid.tiles.count)
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

    /// Keeps tile `tileIndex`'s upscaled pixels. Adding an index again replaces the earlier pixels
    /// (in rows `blendFinishedRows` has not finished yet).
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
        received[tileIndex] = true
    }

    public var isComplete: Bool { received.allSatisfy { $0 } }

    /// Tiles whose pixels are held (added and not yet dropped by `blendFinishedRows`).
    public var heldTileCount: Int { tilePixels.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// Indices of the tiles not added yet, ascending.
    public var missingTileIndices: [Int] { received.indices.filter { !received[$0] } }

    /// Blends every output row, from the first unfinished one down, whose covering tiles are all
    /// in, then drops the pixels of the tiles lying wholly above the finished rows. The rows it
    /// blends are final: a tile added again afterwards no longer changes them.
    public mutating func blendFinishedRows() {
        var y = finishedRows
        while y < outputHeight && rowIsCovered(y) { y += 1 }
        guard y > finishedRows else { return }
        if output.isEmpty { output = [UInt8](repeating: 0, count: outputWidth * outputHeight * channels) }
        var blender = RowBlender(self)
        let (start, tiles) = (finishedRows, tilePixels)
        output.withUnsafeMutableBufferPointer { out in
            for row in start..<y { blender.blend(row: row, tiles: tiles, into: out) }
        }
        finishedRows = y
        for (r, gridRow) in grid.rows.enumerated() where (gridRow.origin + gridRow.length) * scale <= finishedRows {
            for col in grid.columns.indices { tilePixels[r * grid.columns.count + col] = nil }
        }
    }

    /// Whether every tile covering output row `y` has been added.
    private func rowIsCovered(_ y: Int) -> Bool {
        for (r, row) in grid.rows.enumerated() {
            let v = y - row.origin * scale
            guard v >= 0, v < row.length * scale else { continue }
            for col in grid.columns.indices where !received[r * grid.columns.count + col] { return false }
        }
        return true
    }

    /// The stitched image, `outputWidth × outputHeight × channels` bytes. Throws if tiles are missing.
    public func image() throws -> [UInt8] {
        let missing = missingTileIndices
        guard missing.isEmpty else { throw TilingError.missingTiles(missing) }
        if finishedRows == outputHeight { return output }
        var out = output.isEmpty ? [UInt8](repeating: 0, count: outputWidth * outputHeight * channels) : output
        var blender = RowBlender(self)
        out.withUnsafeMutableBufferPointer { buffer in
            for y in finishedRows..<outputHeight { blender.blend(row: y, tiles: tilePixels, into: buffer) }
        }
        return out
    }

    /// One output row from the tiles covering it, accumulated in Double in tile-index order (the
    /// order that makes the result independent of arrival order), rounded half-to-even.
    private struct RowBlender {
        let grid: TileGrid, scale: Int, channels: Int, width: Int
        let columnWeights: [[Double]], rowWeights: [[Double]]
        var sum: [Double], weight: [Double]

        init(_ s: TileStitcher) {
            grid = s.grid; scale = s.scale; channels = s.channels; width = s.outputWidth
            columnWeights = s.grid.columns.map { TileFeather.weights(for: $0, scale: s.scale) }
            rowWeights = s.grid.rows.map { TileFeather.weights(for: $0, scale: s.scale) }
            sum = [Double](repeating: 0, count: s.outputWidth * s.channels)
            weight = [Double](repeating: 0, count: s.outputWidth)
        }

        mutating func blend(row y: Int, tiles: [[UInt8]?], into out: UnsafeMutableBufferPointer<UInt8>) {
            let c = channels
            for i in sum.indices { sum[i] = 0 }
            for i in weight.indices { weight[i] = 0 }
            for (r, row) in grid.rows.enumerated() {
                let v = y - row.origin * scale
                guard v >= 0, v < row.length * scale else { continue }
                let wy = rowWeights[r][v]
                for (col, column) in grid.columns.enumerated() {
                    guard let tile = tiles[r * grid.columns.count + col] else { continue }
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
    }

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
