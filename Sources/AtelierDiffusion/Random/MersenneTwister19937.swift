/// The 32-bit Mersenne Twister (MT19937), bit-compatible with `std::mt19937` and with the engine
/// inside PyTorch's CPU generator (`at::mt19937`, ATen `core/MT19937RNGEngine.h`).
///
/// PyTorch seeds it with `init_with_uint32(seed)`: only the low 32 bits of the 64-bit
/// `manual_seed` value are used (checked: seeds 0 and 2³², and 4294967295 and 2⁶⁴−1, give the same
/// stream), followed by the reference initialisation with multiplier 1812433253.
struct MersenneTwister19937: Sendable {
    private static let stateSize = 624
    private static let shift = 397
    private static let matrixA: UInt32 = 0x9908_b0df
    private static let upperMask: UInt32 = 0x8000_0000
    private static let lowerMask: UInt32 = 0x7fff_ffff

    private var state: [UInt32]
    private var index: Int

    /// Seeds like `torch.Generator("cpu").manual_seed(seed)`.
    init(seed: UInt64) {
        var state = [UInt32](repeating: 0, count: Self.stateSize)
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.stateSize {
            let previous = state[j - 1]
            state[j] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(j)
        }
        self.state = state
        self.index = Self.stateSize
    }

    /// The next 32-bit output (`engine_()` in ATen, `CPUGeneratorImpl::random()`).
    mutating func next() -> UInt32 {
        if index >= Self.stateSize { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        let n = Self.stateSize
        state.withUnsafeMutableBufferPointer { s in
            for k in 0..<n {
                let y = (s[k] & Self.upperMask) | (s[(k + 1) % n] & Self.lowerMask)
                var value = s[(k + Self.shift) % n] ^ (y >> 1)
                if y & 1 != 0 { value ^= Self.matrixA }
                s[k] = value
            }
        }
        index = 0
    }
}
