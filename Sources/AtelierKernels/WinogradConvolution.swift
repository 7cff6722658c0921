import Foundation
import AtelierKernelsC

/// 3×3 stride-1 convolutions in the Winograd domain, F(2×2, 3×3): 4/9 of the direct GEMM's
/// multiplies, the rest additions in separate passes (see Winograd.c for the transforms).
///
/// Why: 3×3 convolutions are about half of an SD2 UNet pass and of a VAE decode; the direct
/// (implicit-GEMM) form already runs the micro-kernel near the FMA peak, so fewer multiplies is
/// what is left. Deterministic like the direct form (fixed arithmetic, the same GEMM chains), but
/// not bit-identical to it. Used where it pays: enough tiles per GEMM to amortise transforming
/// the weights on every call (they are not stored transformed: that would take 16/9 of their
/// memory). `ATELIER_CONV=direct` turns it off.
public enum WinogradConvolution {
    /// On unless `ATELIER_CONV=direct` (for comparisons; both are deterministic).
    nonisolated(unsafe) public static var enabled: Bool =
        ProcessInfo.processInfo.environment["ATELIER_CONV"]?.lowercased() != "direct"

    /// Fewest output tiles (2×2 each) per call below which the direct form is faster: with few
    /// columns the weight transform (and packing it, 16/9 of the weights) costs more than the
    /// multiplies it saves (measured on the SD2 UNet's 8×8 and 16×16 levels).
    nonisolated(unsafe) public static var minimumTiles = 256
    /// Cap on each transformed buffer (input V and product M), floats: 4 Mi = 16 MB (bands of a
    /// few hundred tiles keep the GEMMs efficient and the transient memory small).
    nonisolated(unsafe) public static var budget = 4 << 20

    /// The weights as the transform reads them: plain OIHW, or packed at load.
    public enum Weights {
        case plain(UnsafePointer<Float>)
        case packed(PackedWeightMatrix)
    }

    static func applies(kh: Int, kw: Int, stride: Int, cin: Int, cout: Int, images: Int, hout: Int, wout: Int) -> Bool {
        guard enabled, kh == 3, kw == 3, stride == 1, cin >= 8, cout >= 8 else { return false }
        return images * ((hout + 1) / 2) * ((wout + 1) / 2) >= minimumTiles
    }

    static func conv2d(_ input: Tensor, weights: Weights, cout: Int, bias: Tensor?, padding: Padding2D) -> Tensor {
        let (n, cin, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let hout = h + padding.top + padding.bottom - 2, wout = w + padding.left + padding.right - 2
        precondition(hout > 0 && wout > 0, "conv2d: output would be empty")
        let out = Tensor(uninitialized: [n, cout, hout, wout])
        let (th, tw) = ((hout + 1) / 2, (wout + 1) / 2)
        BLAS.flops &+= 2 * n * cout * hout * wout * cin * 9  // counted as the direct convolution's work

        // U = G g Gᵀ for every (o, c), written straight into 16 packed A operands [cout × cin], so
        // that no GEMM (one per ξ and band) packs it again.
        let uPlane = Int(ak_packed_a_floats(Int32(cout), Int32(cin)))
        let u = UnsafeMutablePointer<Float>.allocate(capacity: 16 * uPlane)
        defer { u.deallocate() }
        let oChunks = min(cout, 4 * Parallel.threads)
        Parallel.forEachTask(oChunks) { t in
            let o0 = t * cout / oChunks, o1 = (t + 1) * cout / oChunks
            let status: Int32
            switch weights {
            case .plain(let p): status = ak_winograd_weights(p, 0, Int32(cout), Int32(cin), Int32(o0), Int32(o1), u, 1)
            case .packed(let p): status = ak_winograd_weights(p.pointer, 1, Int32(cout), Int32(cin), Int32(o0), Int32(o1), u, 1)
            }
            if status != 0 { fatalError("conv2d: out of memory transforming the weights") }
        }

        // Groups of tile rows: all images at once when they fit the budget, else bands of one image.
        let widest = 16 * max(cin, cout)
        var groups: [[(image: Int, ty0: Int, ty1: Int)]] = []
        if n * th * tw * widest <= budget {
            groups.append((0..<n).map { ($0, 0, th) })
        } else {
            // Bands of equal height (no small last band: its GEMMs would be the least efficient).
            let most = max(1, budget / (widest * tw))
            let bands = (th + most - 1) / most, rows = (th + bands - 1) / bands
            for b in 0..<n { for ty in stride(from: 0, to: th, by: rows) { groups.append([(b, ty, min(th, ty + rows))]) } }
        }
        let maxTiles = groups.map { $0.reduce(0) { $0 + ($1.ty1 - $1.ty0) * tw } }.max() ?? 0
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cin * maxTiles)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * cout * maxTiles)
        defer { v.deallocate(); m.deallocate() }
        let cChunks = min(cin, 4 * Parallel.threads)
        for group in groups {
            let tiles = group.reduce(0) { $0 + ($1.ty1 - $1.ty0) * tw }
            var starts: [Int] = [], at = 0
            for part in group { starts.append(at); at += (part.ty1 - part.ty0) * tw }
            Parallel.forEachTask(group.count * cChunks) { t in
                let (gi, ci) = (t / cChunks, t % cChunks)
                let part = group[gi]
                let c0 = ci * cin / cChunks, c1 = (ci + 1) * cin / cChunks
                let status = ak_winograd_input(input.pointer + part.image * cin * h * w, Int32(cin), Int32(h), Int32(w),
                                               Int32(padding.top), Int32(padding.left), Int32(part.ty0), Int32(part.ty1),
                                               Int32(tw), Int32(c0), Int32(c1), v, tiles, starts[gi], cin * tiles)
                if status != 0 { fatalError("conv2d: out of memory transforming the input") }
            }
            for xi in 0..<16 {
                OwnGEMM.multiply(m: cout, n: tiles, k: cin, a: .packed(u + xi * uPlane, rows: cout, depth: cin),
                                 b: .matrix(v + xi * cin * tiles, ld: tiles, transposed: false),
                                 c: m + xi * cout * tiles, ldc: tiles, precision: .fp32)
            }
            Parallel.forEachTask(group.count * oChunks) { t in
                let (gi, oi) = (t / oChunks, t % oChunks)
                let part = group[gi]
                let o0 = oi * cout / oChunks, o1 = (oi + 1) * cout / oChunks
                ak_winograd_output(m, tiles, starts[gi], cout * tiles, Int32(part.ty0), Int32(part.ty1), Int32(tw),
                                   Int32(o0), Int32(o1), bias?.pointer, out.pointer + part.image * cout * hout * wout,
                                   Int32(hout), Int32(wout))
            }
        }
        return out
    }
}
