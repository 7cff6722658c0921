/// One tile of a `TileGrid`: a rectangle of the low-resolution image, in its pixels.
public struct TileRect: Equatable, Hashable, Sendable {
    /// Position in `TileGrid.tiles` (row-major: `row * columnCount + column`).
    public let index: Int
    public let column: Int
    public let row: Int
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int

    public init(index: Int, column: Int, row: Int, x: Int, y: Int, width: Int, height: Int) {
        self.index = index
        self.column = column
        self.row = row
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// The tile's pixels cut out of a row-major, channel-interleaved image buffer.
    public func crop(from pixels: [UInt8], imageWidth: Int, imageHeight: Int, channels: Int) throws -> [UInt8] {
        guard imageWidth > 0, imageHeight > 0, channels > 0,
              pixels.count == imageWidth * imageHeight * channels else {
            throw TilingError.invalidBuffer(
                "image buffer of \(pixels.count) samples does not match \(imageWidth)x\(imageHeight)x\(channels)")
        }
        guard x >= 0, y >= 0, width > 0, height > 0, x + width <= imageWidth, y + height <= imageHeight else {
            throw TilingError.invalidBuffer(
                "tile \(index) (\(x),\(y) \(width)x\(height)) lies outside the \(imageWidth)x\(imageHeight) image")
        }
        var out = [UInt8](repeating: 0, count: width * height * channels)
        let rowLength = width * channels
        for row in 0..<height {
            let source = ((y + row) * imageWidth + x) * channels
            out.replaceSubrange(row * rowLength..<(row + 1) * rowLength,
                                with: pixels[source..<(source + rowLength)])
        }
        return out
    }
}

/// Where the tiles along one axis lie, and how much each overlaps its neighbours.
public struct TileSpan: Equatable, Hashable, Sendable {
    public let origin: Int
    public let length: Int
    /// Pixels shared with the previous span (0 for the first).
    public let leadingOverlap: Int
    /// Pixels shared with the next span (0 for the last).
    public let trailingOverlap: Int

    public var end: Int { origin + length }
}

/// How a W×H low-resolution image is cut into overlapping tiles of side T with overlap O, for
/// tiled x4 upscaling: every tile is upscaled on its own (on the farm, on different workers) and
/// `TileStitcher` blends the results back together.
///
/// The layout along each axis (columns and rows are laid out the same way, independently):
/// - If the side fits in one tile (`side <= tile`), there is exactly one span covering it.
/// - Otherwise spans start at 0, T−O, 2(T−O), … (stride T−O, so neighbours share at least O
///   pixels), and the last span is aligned to the far edge: it starts at `side − T` rounded
///   *down* to a multiple of 4 and runs to the edge. So it is T to T+3 pixels long, and it can
///   overlap its predecessor by more than O (never less).
/// - If that aligned start would not lie past the previous span's start (sides of T+1…T+3, or
///   a stride that already ends within 3 pixels of the edge), the previous span is stretched to
///   the edge instead of adding a near-duplicate.
///
/// Why multiples of 4: the x4 upscaler's latents are the low-res pixels, and the engine pads
/// tile sizes to its UNet's granularity; keeping every origin a multiple of 4 (and every size
/// too, except a span ending at the edge of a side that is itself not a multiple of 4) keeps
/// padding minimal and the grid identical on every machine. T must therefore be a multiple of
/// 4 and O too; the farm additionally asks for T a multiple of 8 and at least 32.
///
/// O < T/2 guarantees that a pixel lies in at most two spans per axis except near the far edge,
/// where the stretched last overlap may reach into the previous span's leading band; the
/// stitcher's weights handle that (they are a minimum of both ramps, never zero).
public struct TileGrid: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let tile: Int
    public let overlap: Int
    /// Column spans (x axis), left to right.
    public let columns: [TileSpan]
    /// Row spans (y axis), top to bottom.
    public let rows: [TileSpan]
    /// All tiles, row-major: index = row * columns.count + column.
    public let tiles: [TileRect]

    public init(width: Int, height: Int, tile: Int, overlap: Int) throws {
        guard width > 0, height > 0 else {
            throw TilingError.invalidGrid("image size must be positive, got \(width)x\(height)")
        }
        guard tile >= 8, tile % 4 == 0 else {
            throw TilingError.invalidGrid("tile size must be a multiple of 4 and at least 8, got \(tile)")
        }
        guard overlap >= 0, overlap % 4 == 0, overlap * 2 < tile else {
            throw TilingError.invalidGrid(
                "overlap must be a multiple of 4 in 0..<\(tile / 2) (less than half the tile of \(tile)), got \(overlap)")
        }
        self.width = width
        self.height = height
        self.tile = tile
        self.overlap = overlap
        self.columns = TileGrid.spans(length: width, tile: tile, overlap: overlap)
        self.rows = TileGrid.spans(length: height, tile: tile, overlap: overlap)
        var tiles = [TileRect]()
        tiles.reserveCapacity(columns.count * rows.count)
        for (r, row) in rows.enumerated() {
            for (c, column) in columns.enumerated() {
                tiles.append(TileRect(index: tiles.count, column: c, row: r, x: column.origin, y: row.origin,
                                      width: column.length, height: row.length))
            }
        }
        self.tiles = tiles
    }

    /// Lays out one axis; see the type's documentation.
    static func spans(length: Int, tile: Int, overlap: Int) -> [TileSpan] {
        var origins = [0]
        if length > tile {
            let stride = tile - overlap
            var last = 0
            while last + tile < length {
                let next = last + stride
                if next + tile >= length {
                    let aligned = (length - tile) / 4 * 4
                    if aligned > last { origins.append(aligned) }
                    break
                }
                origins.append(next)
                last = next
            }
        }
        var spans = [TileSpan]()
        for (i, origin) in origins.enumerated() {
            let end = i + 1 < origins.count ? origin + tile : length
            let previousEnd = i > 0 ? min(origins[i - 1] + tile, length) : origin
            let nextOrigin = i + 1 < origins.count ? origins[i + 1] : end
            spans.append(TileSpan(origin: origin, length: end - origin,
                                  leadingOverlap: max(previousEnd - origin, 0),
                                  trailingOverlap: max(end - nextOrigin, 0)))
        }
        return spans
    }
}
