import Foundation
import AtelierKernelsC

/// 3×3 stride-1 convolutions in the Winograd domain: F(4×4, 3×3) (1/4 of the direct GEMM's
/// multiplies) where the layer has enough output pixels, F(2×2, 3×3) (4/9) below that; the rest
/// is additions in separate passes (Winograd.c, Winograd4.c).
///
/// Why: 3×3 convolutions are about half of an SD2 UNet pass and of a VAE decode; the direct
/// (implicit-GEMM) form already runs the micro-kernel near the FMA peak, so fewer multiplies is
/// what is left. Deterministic like the direct form (fixed arithmetic, the same GEMM chains; the
/// form depends only on the layer's shape), but not bit-identical to it. The weights are
/// transformed on every call, not stored transformed (that would take 16/9 or 36/9 of their
/// memory); big layers' F(4×4) weights a K-block of input channels at a time, so that the
/// transient stays bounded, and layers with few tiles inside the GEMMs, a block at a time in cache
/// (`fusedMaxTiles`; the same values and chains, so the same bits). `ATELIER_CONV=direct` turns Winograd off, `ATELIER_CONV=winograd2`
/// keeps to F(2×2) (the arithmetic of the `gemm2` numerics class).
public enum WinogradConvolution {
    /// The output tile of a form: F(2×2, 3×3) or F(4×4, 3×3).
    public enum Form: Int, Sendable {
        case f2 = 2, f4 = 4
        /// Transformed tile side (tile + 2) and the planes (its square): 4 and 16, or 6 and 36.
        var side: Int { rawValue + 2 }
        var planes: Int { side * side }
    }

    /// On unless `ATELIER_CONV=direct` (for comparisons; both are deterministic).
    nonisolated(unsafe) public static var enabled: Bool =
        ProcessInfo.processInfo.environment["ATELIER_CONV"]?.lowercased() != "direct"
    /// F(4×4) allowed (unless `ATELIER_CONV=winograd2`).
    nonisolated(unsafe) public static var largeTiles: Bool =
        ProcessInfo.processInfo.environment["ATELIER_CONV"]?.lowercased() != "winograd2"

    /// Fewest output pixels per call (over the batch) below which the direct form is faster: with
    /// few GEMM columns the weight transform (and packing it) costs more than the multiplies it
    /// saves (measured on the SD2 UNet's 8×8 and 16×16 levels).
    nonisolated(unsafe) public static var minimumPixels = 1024
    /// Fewest output pixels per call for F(4×4): below it the 36 GEMMs get too narrow. 512 takes
    /// in the UNet's 16×16 level at a CFG batch of 2 (32 tiles), where the weights are transformed
    /// inside the GEMMs (`fusedMaxTiles`): a UNet pass at 512 took 0.90 × its time with the level
    /// direct (median of 6 pairs each, fp32 and bf16, alternating in one process, Xeon 0xCF). With
    /// the transformed weights cached it took 0.88 ×, so the fused transform costs little; through
    /// a buffer it took 1.04 ×, which is why the level used to run direct. The 8×8 level gains
    /// nothing even with cached weights (8 tiles), so it stays direct.
    nonisolated(unsafe) public static var minimumPixelsLarge = 512
    /// Cap on each transformed activation buffer (input V and product M), floats: 4 Mi = 16 MB
    /// (bands of a few hundred tiles keep the GEMMs efficient and the transient memory small).
    nonisolated(unsafe) public static var budget = 4 << 20
    /// Most tiles per group for which F(4×4) transforms its weights inside the GEMMs
    /// (ak_winograd4_fused) instead of into a buffer of 36/9 of the weights first: with few tiles
    /// the GEMMs use each transformed weight a few dozen times, so writing and re-reading it through
    /// memory cost more than the multiplies (the reason the UNet's 16×16 level ran direct). With
    /// many tiles the unfused form's wider GEMMs win: fusing the 32×32 level (128 tiles) too took
    /// the pass from 0.90 × to 0.95 × (same pairs).
    nonisolated(unsafe) public static var fusedMaxTiles = 64
    /// Output channels per fused task: its 36 planes × AK_W4_FUSED_KC channels of transformed
    /// weights (48 rows: 0.9 MB) stay in L2 while the 36 GEMMs use them.
    nonisolated(unsafe) public static var fusedRows = 48
    /// Cap on the transformed weights, floats (4 Mi = 16 MB): above it, F(4×4) transforms them a
    /// K-block of input channels at a time (the GEMMs continue their chains across blocks, so the
    /// bits do not depend on it).
    nonisolated(unsafe) public static var weightBudget = 4 << 20

    /// The weights as the transform reads them: plain OIHW, packed at load, or bf16 OIHW (a bf16
    /// model's: widened exactly, so the layer runs this fp32 arithmetic on the bf16 values).
    public enum Weights {
        case plain(UnsafePointer<Float>)
        case packed(PackedWeightMatrix)
        case bf16(UnsafePointer<UInt16>)
    }

    /// Whether a bf16 model's 3×3 convolutions take the Winograd forms (fp32, from the bf16
    /// weights) rather than the direct bf16 GEMM: everywhere but on AMX tiles, and only on the own
    /// kernels (the OpenBLAS backend keeps the older bf16 class).
    ///
    /// Why: F(4×4) needs a quarter of the direct form's multiplies, and its fp32 arithmetic is far
    /// more exact than bf16 products (the activations are not rounded to 8 bits). Where bf16 is
    /// emulated at the fp32 rate that is a clear gain (a UNet pass at 512: 12.0 → 9.9 s on a Zen 3);
    /// where `vdpbf16ps` doubles the rate, a quarter of the multiplies at the fp32 rate still
    /// wins: a UNet pass at 512 on a Zen 4 took 0.91 × the direct bf16 form's wall time (3 A/B
    /// pairs, `ATELIER_CONV=direct`). Winograd in bf16 itself is not an
    /// option: rounding the transformed operands to 8 bits makes F(4×4)'s error about 14 × the
    /// direct bf16 one (2.4 × for F(2×2)). AMX tiles multiply bf16 many times faster than fp32
    /// FMAs, so there the direct bf16 form stays.
    public static var takesBF16Weights: Bool {
        BLAS.backend == .atelier && ak_isa_current() != Int32(AK_ISA_AMXBF16.rawValue)
    }

    /// The form a layer uses, or nil for the direct convolution.
    static func form(kh: Int, kw: Int, stride: Int, cin: Int, cout: Int, images: Int, hout: Int, wout: Int) -> Form? {
        guard enabled, kh == 3, kw == 3, stride == 1, cin >= 8, cout >= 8 else { return nil }
        let pixels = images * hout * wout
        if largeTiles && pixels >= minimumPixelsLarge && hout >= 4 && wout >= 4 { return .f4 }
        return pixels >= minimumPixels ? .f2 : nil
    }

    static func applies(kh: Int, kw: Int, stride: Int, cin: Int, cout: Int, images: Int, hout: Int, wout: Int) -> Bool {
        form(kh: kh, kw: kw, stride: stride, cin: cin, cout: cout, images: images, hout: hout, wout: wout) != nil
    }

    static func conv2d(_ input: Tensor, weights: Weights, cout: Int, bias: Tensor?, padding: Padding2D) -> Tensor {
        let (n, cin, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let hout = h + padding.top + padding.bottom - 2, wout = w + padding.left + padding.right - 2
        precondition(hout > 0 && wout > 0, "conv2d: output would be empty")
        let form = self.form(kh: 3, kw: 3, stride: 1, cin: cin, cout: cout, images: n, hout: hout, wout: wout) ?? .f2
        let (t, planes) = (form.rawValue, form.planes)
        let out = Tensor(uninitialized: [n, cout, hout, wout])
        let (th, tw) = ((hout + t - 1) / t, (wout + t - 1) / t)
        BLAS.flops &+= 2 * n * cout * hout * wout * cin * 9  // counted as the direct convolution's work

        // Few tiles: the weights are transformed inside the GEMMs, with no weight chunks to plan.
        if form == .f4 {
            let groups = tileGroups(images: n, th: th, tw: tw, widest: planes * max(cin, cout))
            if maxTiles(groups, tw: tw) <= fusedMaxTiles {
                return fusedF4(input, weights: weights, cout: cout, bias: bias, padding: padding, groups: groups, out: out)
            }
        }

        // Input channels per weight transform: all, unless F(4×4)'s planes would pass the budget;
        // then whole K-blocks, so that chunk boundaries are the GEMM's own K-block boundaries.
        let kc = Int(AK_KC)
        var kChunk = cin
        if form == .f4 && planes * cout * cin > weightBudget {
            kChunk = min(cin, max(kc, weightBudget / (planes * cout) / kc * kc))
        }
        let chunks = stride(from: 0, to: cin, by: kChunk).map { ($0, min(cin, $0 + kChunk)) }
        func uPlane(_ width: Int) -> Int { Int(ak_packed_a_floats(Int32(cout), Int32(width))) }
        let groups = tileGroups(images: n, th: th, tw: tw, widest: planes * max(kChunk, cout))
        let maxTiles = maxTiles(groups, tw: tw)
        // Fresh buffers per call: kept between calls (a workspace) they saved about 1 % of a UNet
        // pass but raised its peak RSS by 2.5 % (glibc's heap already recycles these blocks).
        let u = UnsafeMutablePointer<Float>.allocate(capacity: planes * uPlane(kChunk))
        let v = UnsafeMutablePointer<Float>.allocate(capacity: planes * kChunk * maxTiles)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: planes * cout * maxTiles)
        defer { u.deallocate(); v.deallocate(); m.deallocate() }
        let mr = Int(ak_mr()), panels = (cout + mr - 1) / mr
        let oChunks = min(panels, 4 * Parallel.threads)
        let (wp, layout) = weights.transformOperand
        /// U = G g Gᵀ for every (o, c) of channels [c0, c1), written straight into packed A planes
        /// [cout × (c1 − c0)], so that no GEMM packs it again.
        func transformWeights(_ c0: Int, _ c1: Int) {
            Parallel.forEachTask(oChunks) { i in
                // Whole MR-row panels per task.
                let o0 = min(cout, i * panels / oChunks * mr), o1 = min(cout, (i + 1) * panels / oChunks * mr)
                guard o0 < o1 else { return }
                let status = form == .f4
                    ? ak_winograd4_weights(wp, layout, Int32(cout), Int32(cin), Int32(c0), Int32(c1), Int32(o0), Int32(o1), u)
                    : ak_winograd_weights(wp, layout, Int32(cout), Int32(cin), Int32(o0), Int32(o1), u, 1)
                if status != 0 { fatalError("conv2d: out of memory transforming the weights") }
            }
        }

        if chunks.count == 1 { transformWeights(0, cin) }
        for group in groups {
            let tiles = group.reduce(0) { $0 + ($1.ty1 - $1.ty0) * tw }
            var starts: [Int] = [], at = 0
            for part in group { starts.append(at); at += (part.ty1 - part.ty0) * tw }
            for (ci, (c0, c1)) in chunks.enumerated() {
                if chunks.count > 1 { transformWeights(c0, c1) }
                let width = c1 - c0, plane = uPlane(width)
                let cChunks = min(width, 4 * Parallel.threads)
                Parallel.forEachTask(group.count * cChunks) { i in
                    let (gi, part) = (i / cChunks, group[i / cChunks])
                    let s0 = Int32((i % cChunks) * width / cChunks), s1 = Int32((i % cChunks + 1) * width / cChunks)
                    let x = input.pointer + (part.image * cin + c0) * h * w
                    let status = form == .f4
                        ? ak_winograd4_input(x, Int32(width), Int32(h), Int32(w), Int32(padding.top), Int32(padding.left),
                                             Int32(part.ty0), Int32(part.ty1), Int32(tw), s0, s1, v, tiles, starts[gi], width * tiles)
                        : ak_winograd_input(x, Int32(width), Int32(h), Int32(w), Int32(padding.top), Int32(padding.left),
                                            Int32(part.ty0), Int32(part.ty1), Int32(tw), s0, s1, v, tiles, starts[gi], width * tiles)
                    if status != 0 { fatalError("conv2d: out of memory transforming the input") }
                }
                // The planes' GEMMs side by side, one per task: each is narrow (a band's tiles), and
                // split across the threads it would leave them idle at every plane's barrier.
                Parallel.forEachTask(planes) { xi in
                    ak_sgemm_packed_a_serial(Int32(cout), Int32(tiles), Int32(width), u + xi * plane,
                                             v + xi * width * tiles, tiles, m + xi * cout * tiles, tiles, ci > 0 ? 1 : 0)
                }
            }
            transformOutput(form, m: m, tiles: tiles, starts: starts, group: group, tw: tw, cout: cout, bias: bias, out: out)
        }
        return out
    }

    /// Groups of tile rows whose transformed operands (`widest` floats per tile) fit the budget:
    /// all images at once when they fit, else bands of one image.
    static func tileGroups(images n: Int, th: Int, tw: Int, widest: Int) -> [[(image: Int, ty0: Int, ty1: Int)]] {
        if n * th * tw * widest <= budget { return [(0..<n).map { ($0, 0, th) }] }
        // Bands of equal height (no small last band: its GEMMs would be the least efficient).
        let most = max(1, budget / (widest * tw))
        let bands = (th + most - 1) / most, rows = (th + bands - 1) / bands
        var groups: [[(image: Int, ty0: Int, ty1: Int)]] = []
        for b in 0..<n { for ty in stride(from: 0, to: th, by: rows) { groups.append([(b, ty, min(th, ty + rows))]) } }
        return groups
    }

    static func maxTiles(_ groups: [[(image: Int, ty0: Int, ty1: Int)]], tw: Int) -> Int {
        groups.map { $0.reduce(0) { $0 + ($1.ty1 - $1.ty0) * tw } }.max() ?? 0
    }

    /// Y = Aᵀ M A + bias for one group's tiles, in parallel over output channels.
    static func transformOutput(_ form: Form, m: UnsafeMutablePointer<Float>, tiles: Int, starts: [Int],
                                group: [(image: Int, ty0: Int, ty1: Int)], tw: Int, cout: Int, bias: Tensor?, out: Tensor) {
        let (hout, wout) = (out.shape[2], out.shape[3])
        let oChunks = min((cout + Int(ak_mr()) - 1) / Int(ak_mr()), 4 * Parallel.threads)
        Parallel.forEachTask(group.count * oChunks) { i in
            let (gi, part) = (i / oChunks, group[i / oChunks])
            let o0 = Int32((i % oChunks) * cout / oChunks), o1 = Int32((i % oChunks + 1) * cout / oChunks)
            let y = out.pointer + part.image * cout * hout * wout
            if form == .f4 {
                ak_winograd4_output(m, tiles, starts[gi], cout * tiles, Int32(part.ty0), Int32(part.ty1), Int32(tw),
                                    o0, o1, bias?.pointer, y, Int32(hout), Int32(wout))
            } else {
                ak_winograd_output(m, tiles, starts[gi], cout * tiles, Int32(part.ty0), Int32(part.ty1), Int32(tw),
                                   o0, o1, bias?.pointer, y, Int32(hout), Int32(wout))
            }
        }
    }

    /// F(4×4) with the weights transformed inside the GEMMs (ak_winograd4_fused): V is made and
    /// packed once per group, then each task takes `fusedRows` output channels through all input
    /// channels, transforming its block of weights a K-block at a time into cache right before
    /// use. The same values and chains as the unfused form, so the same bits.
    static func fusedF4(_ input: Tensor, weights: Weights, cout: Int, bias: Tensor?, padding: Padding2D,
                        groups: [[(image: Int, ty0: Int, ty1: Int)]], out: Tensor) -> Tensor {
        let (cin, h, w) = (input.shape[1], input.shape[2], input.shape[3])
        let tw = (out.shape[3] + 3) / 4, planes = Form.f4.planes
        let maxTiles = maxTiles(groups, tw: tw)
        let vPlane = Int(ak_winograd4_packed_v_floats(Int32(cin), Int32(maxTiles)))
        let v = UnsafeMutablePointer<Float>.allocate(capacity: planes * cin * maxTiles)
        // The micro-kernels load B panels with aligned loads.
        let vp = UnsafeMutableRawPointer.allocate(byteCount: planes * vPlane * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: planes * vPlane)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: planes * cout * maxTiles)
        defer { v.deallocate(); vp.deallocate(); m.deallocate() }
        let mr = Int(ak_mr()), panels = (cout + mr - 1) / mr
        let rowsPerTask = max(fusedRows, mr)
        let rowTasks = max(min(panels, 4 * Parallel.threads), (panels * mr + rowsPerTask - 1) / rowsPerTask)
        let (wp, layout) = weights.transformOperand
        for group in groups {
            let tiles = group.reduce(0) { $0 + ($1.ty1 - $1.ty0) * tw }
            var starts: [Int] = [], at = 0
            for part in group { starts.append(at); at += (part.ty1 - part.ty0) * tw }
            let cChunks = min(cin, 4 * Parallel.threads)
            Parallel.forEachTask(group.count * cChunks) { i in
                let (gi, part) = (i / cChunks, group[i / cChunks])
                let s0 = Int32((i % cChunks) * cin / cChunks), s1 = Int32((i % cChunks + 1) * cin / cChunks)
                let x = input.pointer + part.image * cin * h * w
                if ak_winograd4_input(x, Int32(cin), Int32(h), Int32(w), Int32(padding.top), Int32(padding.left),
                                      Int32(part.ty0), Int32(part.ty1), Int32(tw), s0, s1, v, tiles, starts[gi], cin * tiles) != 0 {
                    fatalError("conv2d: out of memory transforming the input")
                }
            }
            let packTasks = min(planes, 4 * Parallel.threads)
            Parallel.forEachTask(packTasks) { i in
                ak_winograd4_pack_v(v, tiles, cin * tiles, Int32(cin), Int32(tiles), Int32(i * planes / packTasks),
                                    Int32((i + 1) * planes / packTasks), vp)
            }
            Parallel.forEachTask(rowTasks) { i in
                // Whole MR-row panels per task.
                let o0 = i * panels / rowTasks * mr, o1 = min(cout, (i + 1) * panels / rowTasks * mr)
                guard o0 < o1 else { return }
                if ak_winograd4_fused(wp, layout, Int32(cout), Int32(cin), Int32(o0), Int32(o1), vp, Int32(tiles),
                                      m, tiles, cout * tiles, 0) != 0 {
                    fatalError("conv2d: out of memory transforming the weights")
                }
            }
            transformOutput(.f4, m: m, tiles: tiles, starts: starts, group: group, tw: tw, cout: cout, bias: bias, out: out)
        }
        return out
    }
}

extension WinogradConvolution.Weights {
    /// The pointer and AK_WEIGHTS_… layout the weight transforms read (packed weights are packed on
    /// first use here, before any task starts).
    var transformOperand: (UnsafeRawPointer, Int32) {
        switch self {
        case .plain(let p): return (UnsafeRawPointer(p), Int32(AK_WEIGHTS_PLAIN))
        case .packed(let p): return (UnsafeRawPointer(p.pointer), Int32(AK_WEIGHTS_PACKED))
        case .bf16(let p): return (UnsafeRawPointer(p), Int32(AK_WEIGHTS_BF16))
        }
    }
}
