/// Why a tile grid could not be laid out or a stitch could not be made. The messages name the
/// offending values, because they reach users of `atelier upscale --tile/--overlap` and farm
/// clients verbatim.
public enum TilingError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The image size, tile size or overlap is out of range.
    case invalidGrid(String)
    /// A tile index outside the grid.
    case unknownTile(index: Int, tileCount: Int)
    /// Tile pixels of the wrong size for the tile's rectangle at the stitcher's scale.
    case wrongTileSize(index: Int, expected: Int, got: Int, detail: String)
    /// `image()` was asked for before every tile was added.
    case missingTiles([Int])
    /// A buffer that does not match the size it claims.
    case invalidBuffer(String)

    public var description: String {
        switch self {
        case .invalidGrid(let message):
            return message
        case .unknownTile(let index, let count):
            return "tile \(index) does not exist: the grid has \(count) tiles (0…\(max(count - 1, 0)))"
        case .wrongTileSize(let index, let expected, let got, let detail):
            return "tile \(index) must have \(expected) samples (\(detail)), got \(got)"
        case .missingTiles(let indices):
            let shown = indices.prefix(10).map(String.init).joined(separator: ", ")
            return "cannot stitch yet: \(indices.count) tile(s) missing (\(shown)\(indices.count > 10 ? ", …" : ""))"
        case .invalidBuffer(let message):
            return message
        }
    }
}
