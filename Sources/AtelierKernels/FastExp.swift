/// exp(x) for eight floats at once (Cephes `expf`: range reduction by ln 2 in two parts, degree-6
/// polynomial, exponent bits), within 2 ulp of libm. Plain SIMD arithmetic with no fused
/// multiply-adds, so every machine running this binary gets the same bits.
enum FastExp {
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // Below −87.3 the result is under Float's normal range; −inf (masked lanes) lands here too.
        let xc = x.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.3))
        // n = round(x / ln 2) by the 1.5·2²³ trick: adding it leaves n in the low mantissa bits
        // (generic SIMD Float→Int conversion and rounding are not vectorised by Swift).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = xc * 1.442_695_04 + magic
        let n = t - magic
        var r = xc - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_1e-1
        let y = p * (r * r) + r + 1
        let bits = (unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        let scale = unsafeBitCast(bits, to: SIMD8<Float>.self)
        // Lanes below the normal range (and masked −inf lanes) give exactly 0.
        return (y * scale).replacing(with: 0, where: x .< -87.3)
    }
}
