/// Zero padding on each side of a feature map. UNet convs pad symmetrically; the VAE's
/// downsampler pads right and bottom only (SD2-SPEC §7.3), hence four independent sides.
public struct Padding2D: Equatable, Sendable {
    public var top: Int, left: Int, bottom: Int, right: Int

    public init(top: Int, left: Int, bottom: Int, right: Int) {
        self.top = top; self.left = left; self.bottom = bottom; self.right = right
    }

    public static func symmetric(_ p: Int) -> Padding2D { .init(top: p, left: p, bottom: p, right: p) }
    public static let none = Padding2D.symmetric(0)
}
