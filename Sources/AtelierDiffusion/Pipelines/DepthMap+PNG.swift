extension DepthMap {
    /// A depth map from a decoded PNG, as `atelier render --depth-map` and a farm worker read it:
    /// sample values scaled to [0, 1] (v / (2^bits − 1)); only their relative order matters, the
    /// pipeline min-max normalises the map.
    public init(png: DecodedPNG) {
        if case .gray16(let samples) = png.pixels {
            self.init(width: png.width, height: png.height, values: samples.map { Float($0) / 65535 })
            return
        }
        let g = png.gray()
        self.init(width: g.width, height: g.height, values: g.pixels.map { Float($0) / 255 })
    }
}
