import AtelierKernels
import Foundation

/// A random source that reproduces `torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(shape, generator=g)` / `torch.rand(shape, generator=g)` for float32 CPU tensors,
/// bit for bit, including how successive calls share one generator's state — so a diffusers
/// pipeline's "same seed, same image" carries over (SD2-SPEC §4 RNG order, §7.10, §9).
///
/// What torch does (ATen `native/cpu/DistributionTemplates.h` `normal_kernel`,
/// `core/DistributionsHelper.h`, `core/TransformationHelper.h`):
/// - **N ≥ 16** (contiguous float32): fill all N slots with float uniforms
///   u = (next32 & 0xFFFFFF)·2⁻²⁴; transform each full block of 16 in place with Box–Muller
///   (slot j and j+8 from u1 = 1 − d[j], u2 = d[j+8]); if N % 16 ≠ 0, draw 16 *fresh* uniforms
///   into the last 16 slots and transform that block again. The transform uses the AVX
///   Cephes approximations and θ = float(2π)·u2 (`normal_fill_16_AVX2`; see `AVXMathFunctions`).
/// - **N < 16**: one `at::normal_distribution<double>` draw per element. Each fresh draw takes
///   two 53-bit double uniforms (each from two 32-bit outputs, first one high), returns
///   r·cos θ and *caches* r·sin θ in the generator; the next small-path draw — in this call or
///   a later one — consumes the cache first. The cache survives N ≥ 16 calls, which don't touch it.
public struct TorchRandomSource: Sendable {
    /// The seed given at construction (only its low 32 bits matter, as in torch).
    public let seed: UInt64
    private var engine: MersenneTwister19937
    /// `CPUGeneratorImpl::next_double_normal_sample_`.
    private var cachedDoubleNormal: Double?

    /// Equivalent of `torch.Generator("cpu").manual_seed(seed)`.
    public init(seed: UInt64) {
        self.seed = seed
        self.engine = MersenneTwister19937(seed: seed)
        self.cachedDoubleNormal = nil
    }

    /// `torch.randn(shape, generator=g, dtype=torch.float32)` on CPU.
    public mutating func normal(shape: [Int]) -> Tensor {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let result = Tensor(uninitialized: shape)
        let count = result.count
        if count >= 16 {
            fillNormalVectorised(result.pointer, count: count)
        } else {
            for i in 0..<count { result.pointer[i] = Float(nextDoubleNormal()) }
        }
        return result
    }

    /// `torch.rand(shape, generator=g, dtype=torch.float32)` on CPU: one 32-bit draw per element,
    /// u = (next32 & 0xFFFFFF)·2⁻²⁴ ∈ [0, 1).
    public mutating func uniform(shape: [Int]) -> Tensor {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let result = Tensor(uninitialized: shape)
        for i in 0..<result.count { result.pointer[i] = nextFloatUniform() }
        return result
    }

    /// The raw 32-bit engine output (`CPUGeneratorImpl::random()`).
    public mutating func nextUInt32() -> UInt32 { engine.next() }

    // MARK: - torch's distributions

    /// `uniform_real_distribution<float>(0, 1)`: 24 random bits scaled by 2⁻²⁴ (exact).
    @inline(__always)
    private mutating func nextFloatUniform() -> Float {
        Float(engine.next() & 0x00FF_FFFF) * Float(bitPattern: 0x3380_0000)  // 2⁻²⁴
    }

    /// `uniform_real_distribution<double>(0, 1)`: `random64()` = (first << 32) | second, masked to
    /// 53 bits and scaled by 2⁻⁵³.
    private mutating func nextDoubleUniform() -> Double {
        let high = UInt64(engine.next())
        let low = UInt64(engine.next())
        let bits = ((high << 32) | low) & ((1 << 53) - 1)
        return Double(bits) * 0x1p-53
    }

    /// `normal_distribution<double>(0, 1)` with the generator's cached second sample.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedDoubleNormal {
            cachedDoubleNormal = nil
            return cached
        }
        let u1 = nextDoubleUniform()
        let u2 = nextDoubleUniform()
        let radius = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedDoubleNormal = radius * Foundation.sin(theta)
        return radius * Foundation.cos(theta)
    }

    /// `normal_fill_AVX2` (mean 0, std 1).
    private mutating func fillNormalVectorised(_ data: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { data[i] = nextFloatUniform() }
        var start = 0
        while start + 16 <= count {
            Self.boxMuller16(data + start)
            start += 16
        }
        if count % 16 != 0 {
            let tail = data + (count - 16)
            for i in 0..<16 { tail[i] = nextFloatUniform() }
            Self.boxMuller16(tail)
        }
    }

    /// `normal_fill_16_AVX2`: lanes j and j+8 of a 16-float block become r·cos θ and r·sin θ.
    @inline(__always)
    private static func boxMuller16(_ data: UnsafeMutablePointer<Float>) {
        let twoPi = Float(2.0 * Double.pi)  // `_mm256_set1_ps(2.0f * c10::pi<double>)`
        for j in 0..<8 {
            let u1 = 1 - data[j]
            let u2 = data[j + 8]
            let radius = (Float(-2) * AVXMathFunctions.log(u1)).squareRoot()
            let (sinTheta, cosTheta) = AVXMathFunctions.sincos(twoPi * u2)
            // `_mm256_fmadd_ps(n, std, mean)` with std 1, mean 0: n·1 + 0 (turns −0 into +0).
            data[j] = Float(0).addingProduct(radius * cosTheta, 1)
            data[j + 8] = Float(0).addingProduct(radius * sinTheta, 1)
        }
    }
}
