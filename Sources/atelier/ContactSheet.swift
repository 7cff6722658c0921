import AtelierDiffusion

/// One grid image of several results with their captions lettered underneath — what the demo
/// shows a new user, so that "does the picture follow the words?" is answered at a glance.
///
/// Layout: `columns` cells per row, all `cellSide` wide; each image is enlarged by the largest
/// integer factor that fits the cell (nearest neighbour, so 64 px renders stay crisp next to a
/// 256 px upscale of one of them), or by `scale` for all when given, and sits centred above up to
/// `maxCaptionLines` word-wrapped lines of `BitmapFont` text, black on white.
struct ContactSheet {
    struct Entry {
        let image: RGBImage
        let caption: String
    }

    static let padding = 8
    static let maxCaptionLines = 4
    /// Larger sheets are refused rather than allocated (8192² × 3 bytes = 192 MiB).
    static let maxSide = 8192

    let entries: [Entry]
    let columns: Int
    /// One enlargement for every image; nil: per image, to fill a cell of at least `minCell` px.
    let scale: Int?
    static let minCell = 128
    static let maxScale = 8

    func factor(_ image: RGBImage, cell: Int) -> Int {
        scale ?? max(1, min(Self.maxScale, cell / max(image.width, image.height)))
    }

    /// The sheet as an image; fails when it would exceed `maxSide` or there is nothing to show.
    func render() throws -> RGBImage {
        guard !entries.isEmpty else { throw CLIError("contact-sheet needs at least one image") }
        guard columns >= 1, (scale ?? 1) >= 1 else { throw CLIError("contact-sheet: --columns and --scale must be at least 1") }
        let side = entries.map { max($0.image.width, $0.image.height) }.max() ?? 0
        let cell = scale.map { side * $0 } ?? max(side, Self.minCell)
        let imageW = entries.map { $0.image.width * factor($0.image, cell: cell) }.max() ?? 0
        let imageH = entries.map { $0.image.height * factor($0.image, cell: cell) }.max() ?? 0
        let cellW = max(imageW, BitmapFont.advance * 12)
        let charsPerLine = max(1, (cellW + 1) / BitmapFont.advance)
        let wrapped = entries.map { Self.wrap($0.caption, width: charsPerLine, maxLines: Self.maxCaptionLines) }
        let textH = (wrapped.map(\.count).max() ?? 0) * BitmapFont.lineHeight
        let cellH = imageH + 4 + textH
        let cols = min(columns, entries.count)
        let rows = (entries.count + cols - 1) / cols
        let (width, height) = (Self.padding + cols * (cellW + Self.padding), Self.padding + rows * (cellH + Self.padding))
        guard width <= Self.maxSide, height <= Self.maxSide else {
            throw CLIError("the contact sheet would be \(width)×\(height) px, over \(Self.maxSide) a side; use fewer images, fewer --columns or a smaller --scale")
        }
        var canvas = Canvas(width: width, height: height)
        for (i, entry) in entries.enumerated() {
            let x0 = Self.padding + (i % cols) * (cellW + Self.padding)
            let y0 = Self.padding + (i / cols) * (cellH + Self.padding)
            let f = factor(entry.image, cell: cell)
            let ox = x0 + (cellW - entry.image.width * f) / 2
            let oy = y0 + (imageH - entry.image.height * f) / 2
            canvas.blit(entry.image, x: ox, y: oy, scale: f)
            for (line, text) in wrapped[i].enumerated() {
                let textW = text.unicodeScalars.count * BitmapFont.advance - 1
                canvas.letter(text, x: x0 + max(0, (cellW - textW) / 2), y: y0 + imageH + 4 + line * BitmapFont.lineHeight)
            }
        }
        return try RGBImage(width: width, height: height, pixels: canvas.pixels)
    }

    /// Word wrap to `width` characters; over-long words are cut, and a caption longer than
    /// `maxLines` ends its last line with "...".
    static func wrap(_ text: String, width: Int, maxLines: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init) {
            var w = word
            while w.unicodeScalars.count > width {
                if !current.isEmpty { lines.append(current); current = "" }
                let head = String(String.UnicodeScalarView(w.unicodeScalars.prefix(width)))
                lines.append(head)
                w = String(String.UnicodeScalarView(w.unicodeScalars.dropFirst(width)))
            }
            if current.isEmpty {
                current = w
            } else if current.unicodeScalars.count + 1 + w.unicodeScalars.count <= width {
                current += " " + w
            } else {
                lines.append(current)
                current = w
            }
        }
        if !current.isEmpty { lines.append(current) }
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines))
            let last = lines[maxLines - 1]
            let keep = max(0, min(last.unicodeScalars.count, width - 3))
            lines[maxLines - 1] = String(String.UnicodeScalarView(last.unicodeScalars.prefix(keep))) + "..."
        }
        return lines
    }

    /// A white RGB pixel buffer with the two drawing operations the sheet needs.
    struct Canvas {
        let width: Int
        let height: Int
        var pixels: [UInt8]

        init(width: Int, height: Int) {
            self.width = width
            self.height = height
            pixels = [UInt8](repeating: 255, count: width * height * 3)
        }

        mutating func blit(_ image: RGBImage, x: Int, y: Int, scale: Int) {
            for sy in 0..<(image.height * scale) {
                let ty = y + sy
                guard ty >= 0, ty < height else { continue }
                let srcRow = (sy / scale) * image.width * 3
                for sx in 0..<(image.width * scale) {
                    let tx = x + sx
                    guard tx >= 0, tx < width else { continue }
                    let s = srcRow + (sx / scale) * 3
                    let d = (ty * width + tx) * 3
                    pixels[d] = image.pixels[s]
                    pixels[d + 1] = image.pixels[s + 1]
                    pixels[d + 2] = image.pixels[s + 2]
                }
            }
        }

        mutating func letter(_ text: String, x: Int, y: Int) {
            for (k, scalar) in text.unicodeScalars.enumerated() {
                let rows = BitmapFont.rows(scalar)
                for (r, bits) in rows.enumerated() {
                    for c in 0..<BitmapFont.glyphWidth where bits & (0x10 >> UInt8(c)) != 0 {
                        let px = x + k * BitmapFont.advance + c, py = y + r
                        guard px >= 0, px < width, py >= 0, py < height else { continue }
                        let d = (py * width + px) * 3
                        pixels[d] = 0; pixels[d + 1] = 0; pixels[d + 2] = 0
                    }
                }
            }
        }
    }
}
