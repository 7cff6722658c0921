import Foundation

/// A small seeded generator (SplitMix64) for benchmark and test inputs: repeatable on every machine,
/// and not the torch-compatible generator (inputs of `inspect`, `bench` and kernel tests only need
/// something repeatable).
public struct SplitMix64 {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// A tensor of standard normal values (Box–Muller).
    public mutating func normal(_ shape: [Int]) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count {
            let u1 = max(uniform(), 1e-300), u2 = uniform()
            t.pointer[i] = Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        return t
    }
}
