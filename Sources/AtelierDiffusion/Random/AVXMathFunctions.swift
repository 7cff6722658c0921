/// Scalar ports of `log256_ps` and `sincos256_ps` from ATen `native/cpu/avx_mathfun.h` (Giovanni
/// Garberoglio's AVX port of Julien Pommier's Cephes-based `sse_mathfun.h`, zlib licence), which
/// `torch.randn` uses for float32 tensors of 16 or more elements (`normal_fill_16_AVX2` in
/// `native/cpu/DistributionTemplates.h`).
///
/// Why a port and not `logf`/`sinf`/`cosf`: these polynomials are accurate to a couple of ulp, so
/// a correctly rounded Box–Muller disagrees with `torch.randn` in the last bits of ~40 % of values
/// (SD2-SPEC §9). Bit-identity also depends on *where the compiler fused multiply-adds*: ATen is
/// built by GCC with `-ffp-contract=fast`, which turns every `_mm256_add_ps(_mm256_mul_ps(a, b), c)`
/// whose product has no other use into a `vfmadd`. Where an addition has two product operands
/// (`y·z + e·q1` in the log, `y·z − z·0.5` in the cosine polynomial) GCC's widening-mul pass fuses
/// the product that is computed first. Every `addingProduct` below marks one of those fusions;
/// plain `*`/`+` are separately rounded (Swift does not contract floating-point expressions).
/// This placement reproduces torch 2.13 (AVX-512 build, GCC 13) bit for bit on 4 M samples.
enum AVXMathFunctions {
    // Cephes log constants (avx_mathfun.h `_ps256_cephes_log_*`).
    private static let sqrtHalf = Float(0.707106781186547524)
    private static let logP: [Float] = [
        7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
        -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1,
    ]
    private static let logQ1 = Float(-2.12194440e-4)
    private static let logQ2 = Float(0.693359375)

    // Cephes sin/cos constants (`_ps256_minus_cephes_DP*`, `sincof_p*`, `coscof_p*`, `cephes_FOPI`).
    private static let minusDP1 = Float(-0.78515625)
    private static let minusDP2 = Float(-2.4187564849853515625e-4)
    private static let minusDP3 = Float(-3.77489497744594108e-8)
    private static let sinP0 = Float(-1.9515295891E-4)
    private static let sinP1 = Float(8.3321608736E-3)
    private static let sinP2 = Float(-1.6666654611E-1)
    private static let cosP0 = Float(2.443315711809948E-005)
    private static let cosP1 = Float(-1.388731625493765E-003)
    private static let cosP2 = Float(4.166664568298827E-002)
    private static let fourOverPi = Float(1.27323954473516)

    /// `log256_ps` for one lane. The argument is in (0, 1] in the normal sampler, so the NaN
    /// masking for x ≤ 0 of the original is not needed; denormals are clamped as in the original.
    @inline(__always)
    static func log(_ argument: Float) -> Float {
        var x = max(argument, Float(bitPattern: 0x0080_0000))
        var exponent = Int32(bitPattern: x.bitPattern >> 23)
        // Keep the mantissa, force the exponent of 0.5: x ∈ [0.5, 1).
        x = Float(bitPattern: (x.bitPattern & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        exponent -= 0x7f
        var e = Float(exponent) + 1
        let below = x < sqrtHalf
        let tmp: Float = below ? x : 0
        x = x - 1
        e = e - (below ? 1 : 0)
        x = x + tmp

        let z = x * x
        var y = logP[0]
        for k in 1..<logP.count { y = logP[k].addingProduct(y, x) }
        y = y * x
        // y·z + e·q1: GCC fuses the earlier product (y·z) with the later one as addend.
        y = (e * logQ1).addingProduct(y, z)
        y = y.addingProduct(-z, 0.5)
        x = x + y
        x = x.addingProduct(e, logQ2)
        return x
    }

    /// `sincos256_ps` for one lane: (sin θ, cos θ).
    @inline(__always)
    static func sincos(_ argument: Float) -> (sin: Float, cos: Float) {
        var signSin = argument.bitPattern & 0x8000_0000
        var x = Float(bitPattern: argument.bitPattern & 0x7fff_ffff)
        var y = x * fourOverPi
        // j = (int(y) + 1) & ~1 — truncation, as `_mm256_cvttps_epi32`.
        var j = Int32(y)
        j = (j &+ 1) & ~1
        y = Float(j)
        let swapSignSin = UInt32(bitPattern: (j & 4) << 29)
        let useSinPolynomialForSin = (j & 2) == 0
        // Extended-precision range reduction x = ((x − y·DP1) − y·DP2) − y·DP3, each step fused.
        x = x.addingProduct(y, minusDP1)
        x = x.addingProduct(y, minusDP2)
        x = x.addingProduct(y, minusDP3)
        let signCos = UInt32(bitPattern: (~(j &- 2) & 4) << 29)
        signSin ^= swapSignSin

        let z = x * x
        // Cosine polynomial: ((p0·z + p1)·z + p2)·z·z − z/2 + 1.
        var yc = cosP1.addingProduct(cosP0, z)
        yc = cosP2.addingProduct(yc, z)
        yc = yc * z
        // yc·z − z·0.5: the earlier product (yc·z) is fused, z·0.5 is rounded first.
        yc = (-(z * 0.5)).addingProduct(yc, z)
        yc = yc + 1
        // Sine polynomial: ((s0·z + s1)·z + s2)·z·x + x.
        var ys = sinP1.addingProduct(sinP0, z)
        ys = sinP2.addingProduct(ys, z)
        ys = ys * z
        ys = x.addingProduct(ys, x)

        // Lane selection exactly as the original (masked and/andnot, then add with +0).
        let sinFromSinPoly: Float = useSinPolynomialForSin ? ys : 0
        let sinFromCosPoly: Float = useSinPolynomialForSin ? 0 : yc
        let cosFromSinPoly = ys - sinFromSinPoly
        let cosFromCosPoly = yc - sinFromCosPoly
        let s = sinFromCosPoly + sinFromSinPoly
        let c = cosFromCosPoly + cosFromSinPoly
        return (Float(bitPattern: s.bitPattern ^ signSin), Float(bitPattern: c.bitPattern ^ signCos))
    }
}
