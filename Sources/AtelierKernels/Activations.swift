import Foundation
import AtelierKernelsC

/// Exact activations (SD2 uses no tanh approximations anywhere: SD2-SPEC §7.2).
public enum Activation {
    @inline(__always) static func quickGeluScalar(_ v: Float) -> Float { v / (1 + expf(-1.702 * v)) }

    /// SiLU with the kernels' own exp (AtelierKernelsC/SiLU.c): vectorised, independent of libm.
    public static func silu(_ x: Tensor) -> Tensor { elementwise(x, ak_silu) }
    /// GELU with the kernels' own erf (AtelierKernelsC/GELU.c): vectorised, and independent of libm.
    public static func gelu(_ x: Tensor) -> Tensor { elementwise(x, ak_gelu) }

    /// Runs a C element-wise kernel over `x` in blocks of 4096 floats, split across the threads.
    static func elementwise(_ x: Tensor, _ kernel: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void) -> Tensor {
        let y = Tensor(uninitialized: x.shape)
        let n = x.count
        withoutActuallyEscaping(kernel) { kernel in
            Parallel.forEachChunk((n + 4095) / 4096) { range in
                let lo = range.lowerBound * 4096, hi = min(n, range.upperBound * 4096)
                kernel(x.pointer + lo, y.pointer + lo, hi - lo)
            }
        }
        return y
    }
    public static func quickGelu(_ x: Tensor) -> Tensor { map(x, quickGeluScalar) }
    public static func relu(_ x: Tensor) -> Tensor { map(x) { max($0, 0) } }
    /// The tanh approximation ("gelu_new"); SD2 never uses it, but some CLIP configs name it.
    public static func geluTanh(_ x: Tensor) -> Tensor {
        map(x) { v in 0.5 * v * (1 + tanhf(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
    }

    /// GEGLU on the last axis: the first half is the value, the second the gate (diffusers'
    /// `hidden_states, gate = proj(x).chunk(2, dim=-1)`), out = value · GELU(gate).
    public static func geglu(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] % 2 == 0 && x.shape[x.rank - 1] > 0, "geglu wants an even last axis, got \(x.shape)")
        let d2 = x.shape[x.rank - 1], d = d2 / 2
        let rows = x.count / d2
        var shape = x.shape
        shape[shape.count - 1] = d
        let y = Tensor(uninitialized: shape)
        Parallel.forEachChunk(rows, grain: 16) { range in
            ak_geglu_rows(x.pointer + range.lowerBound * d2, y.pointer + range.lowerBound * d, range.count, d)
        }
        return y
    }

    @inline(__always)
    static func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        let y = Tensor(uninitialized: x.shape)
        let n = x.count
        withoutActuallyEscaping(f) { f in
            Parallel.forEachChunk(n, grain: 4096) { range in
                let s = x.pointer, d = y.pointer
                for i in range { d[i] = f(s[i]) }
            }
        }
        return y
    }
}
