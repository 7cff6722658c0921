import AtelierDiffusion

/// What a demo-model picture shows, from pixel statistics alone — the Swift twin of
/// Training/checker.py (same palette, same rules), so that "the picture follows the prompt" is
/// a deterministic test that random weights cannot pass.
///
/// 1. every pixel → nearest palette colour;
/// 2. background: the most common colour of the top border band and of the bottom border band
///    (one colour if they agree, else a two-tone background, which matches a caption's pair of
///    colours either way up: "a green and black background" does not say which is on top, and the
///    training scenes (Training/scenes.py) put either on top);
/// 3. shape colour: the most common colour among the pixels that are not background;
/// 4. shape, from the mask of that colour: fill ratio of its bounding box, and whether its
///    centre is empty (ring).
struct DemoCaptionChecker {
    static let palette: [(name: String, rgb: (Int, Int, Int))] = [
        ("red", (220, 36, 36)), ("green", (36, 170, 60)), ("blue", (40, 76, 220)),
        ("yellow", (240, 216, 40)), ("purple", (140, 50, 180)), ("orange", (245, 140, 24)),
        ("white", (240, 240, 240)), ("black", (20, 20, 20)),
    ]

    struct Reading: Equatable {
        var shape: String?
        var colour: String?
        var background: [String]
    }

    struct Caption: Equatable {
        var shape, colour, size: String
        var background: [String]

        /// "a small red circle on a blue background", "a large white star on a green and black background"
        init?(_ text: String) {
            let w = text.split(separator: " ").map(String.init)
            guard w.count == 8 || w.count == 10, w[0] == "a", w[4] == "on", w[5] == "a" || w[5] == "an",
                  w.last == "background" else { return nil }
            size = w[1]; colour = w[2]; shape = w[3]
            background = w.count == 8 ? [w[6]] : [w[6], w[8]]
            guard w.count == 8 || w[7] == "and" else { return nil }
        }
    }

    /// One colour, or the same two colours either way up.
    static func sameBackground(_ seen: [String], _ caption: [String]) -> Bool {
        seen.count == caption.count && Set(seen) == Set(caption)
    }

    static func read(_ image: RGBImage) -> Reading {
        let (w, h) = (image.width, image.height)
        var cls = [Int](repeating: 0, count: w * h)
        for i in 0..<(w * h) {
            let (r, g, b) = (Int(image.pixels[3 * i]), Int(image.pixels[3 * i + 1]), Int(image.pixels[3 * i + 2]))
            var best = 0, bestD = Int.max
            for (k, p) in palette.enumerated() {
                let d = (r - p.rgb.0) * (r - p.rgb.0) + (g - p.rgb.1) * (g - p.rgb.1) + (b - p.rgb.2) * (b - p.rgb.2)
                if d < bestD { bestD = d; best = k }
            }
            cls[i] = best
        }
        let band = max(1, h / 32)
        // the border bands of each half: top/bottom rows plus the left and right columns
        func halfMode(top: Bool) -> Int {
            var counts = [Int](repeating: 0, count: palette.count)
            let rows = top ? 0..<band : (h - band)..<h
            for y in rows { for x in 0..<w { counts[cls[y * w + x]] += 1 } }
            let side = top ? 0..<(h / 2) : (h / 2)..<h
            for y in side {
                for x in 0..<band { counts[cls[y * w + x]] += 1 }
                for x in (w - band)..<w { counts[cls[y * w + x]] += 1 }
            }
            return counts.indices.max { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 > $1) } ?? 0
        }
        let t = halfMode(top: true), b = halfMode(top: false)
        let background = t == b ? [palette[t].name] : [palette[t].name, palette[b].name]
        var counts = [Int](repeating: 0, count: palette.count)
        for c in cls where c != t && c != b { counts[c] += 1 }
        guard counts.reduce(0, +) >= 4 else { return Reading(shape: nil, colour: nil, background: background) }
        let sc = counts.indices.max { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 > $1) } ?? 0
        var (x0, y0, x1, y1, area) = (w, h, -1, -1, 0)
        for y in 0..<h { for x in 0..<w where cls[y * w + x] == sc {
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y); area += 1
        } }
        let fill = Double(area) / Double((x1 - x0 + 1) * (y1 - y0 + 1))
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2)
        var inCentre = 0, centreCount = 0
        for y in max(cy - 1, 0)...min(cy + 1, h - 1) { for x in max(cx - 1, 0)...min(cx + 1, w - 1) {
            centreCount += 1
            if cls[y * w + x] == sc { inCentre += 1 }
        } }
        let centre = Double(inCentre) / Double(centreCount)
        let shape: String
        if centre < 0.5 && fill < 0.8 { shape = "ring" }
        else if fill > 0.88 { shape = "square" }
        else if fill > 0.68 { shape = "circle" }
        else if fill > 0.45 { shape = "triangle" }
        else { shape = "star" }
        return Reading(shape: shape, colour: palette[sc].name, background: background)
    }
}
