/// Shape plumbing and element-wise arithmetic. Kept plain: these are memory-bound and small next
/// to the GEMMs.
public enum Elementwise {
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
        let y = Tensor(uninitialized: a.shape)
        Parallel.forEachChunk(a.count, grain: 8192) { r in
            for i in r { y.pointer[i] = a.pointer[i] + b.pointer[i] }
        }
        return y
    }

    /// a += b, on storage the caller owns.
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
        Parallel.forEachChunk(a.count, grain: 8192) { r in
            for i in r { a.pointer[i] += b.pointer[i] }
        }
    }

    public static func scale(_ a: Tensor, _ s: Float) -> Tensor {
        let y = Tensor(uninitialized: a.shape)
        for i in 0..<a.count { y.pointer[i] = a.pointer[i] * s }
        return y
    }

    /// Concatenation along axis 1 (channels for NCHW), the UNet's skip joins.
    public static func concatChannels(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.rank >= 2 && $0.shape[0] == parts[0].shape[0]
                     && $0.shape.dropFirst(2) == parts[0].shape.dropFirst(2) }, "concatChannels: parts differ outside the channel axis")
        let n = parts[0].shape[0]
        let inner = parts[0].shape.dropFirst(2).reduce(1, *)
        let total = parts.reduce(0) { $0 + $1.shape[1] }
        var shape = parts[0].shape
        shape[1] = total
        let y = Tensor(uninitialized: shape)
        for b in 0..<n {
            var off = b * total * inner
            for p in parts {
                precondition(p.shape[0] == n && p.shape.dropFirst(2).reduce(1, *) == inner, "concat: shape mismatch")
                let len = p.shape[1] * inner
                (y.pointer + off).update(from: p.pointer + b * len, count: len)
                off += len
            }
        }
        return y
    }

    /// Concatenation along axis 0 (batch): classifier-free guidance runs [uncond, cond] together.
    public static func concatBatch(_ parts: [Tensor]) -> Tensor {
        let inner = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == inner }, "concatBatch: shape mismatch")
        let y = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + inner)
        var off = 0
        for p in parts { (y.pointer + off).update(from: p.pointer, count: p.count); off += p.count }
        return y
    }

    /// A window [y, y+h) × [x, x+w) of every plane of an NCHW tensor (a copy).
    public static func crop(_ t: Tensor, x: Int, y: Int, width w: Int, height h: Int) -> Tensor {
        let (n, c, H, W) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        precondition(x >= 0 && y >= 0 && x + w <= W && y + h <= H, "crop outside the tensor")
        let out = Tensor(uninitialized: [n, c, h, w])
        for p in 0..<(n * c) {
            for r in 0..<h { (out.pointer + (p * h + r) * w).update(from: t.pointer + (p * H + y + r) * W + x, count: w) }
        }
        return out
    }

    /// Splits axis 1 into the first `first` channels and the rest.
    public static func splitChannels(_ x: Tensor, first: Int) -> (Tensor, Tensor) {
        precondition(x.rank >= 2 && first >= 0 && first <= x.shape[1], "splitChannels: \(first) of \(x.shape)")
        let n = x.shape[0], c = x.shape[1]
        let inner = x.shape.dropFirst(2).reduce(1, *)
        var s1 = x.shape, s2 = x.shape
        s1[1] = first; s2[1] = c - first
        let a = Tensor(uninitialized: s1), b = Tensor(uninitialized: s2)
        for i in 0..<n {
            let src = x.pointer + i * c * inner
            (a.pointer + i * first * inner).update(from: src, count: first * inner)
            (b.pointer + i * (c - first) * inner).update(from: src + first * inner, count: (c - first) * inner)
        }
        return (a, b)
    }

    /// [N, C, H, W] → [N, H·W, C] (feature map to token sequence).
    public static func channelsToTokens(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2, "channelsToTokens wants [N, C, …], got \(x.shape)")
        let n = x.shape[0], c = x.shape[1], hw = x.count / max(1, n * c)
        let y = Tensor(uninitialized: [n, hw, c])
        for b in 0..<n { transpose(x.pointer + b * c * hw, rows: c, cols: hw, into: y.pointer + b * c * hw) }
        return y
    }

    /// [N, H·W, C] → [N, C, H, W].
    public static func tokensToChannels(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let n = x.shape[0], hw = x.shape[1], c = x.shape[2]
        precondition(hw == height * width, "tokensToChannels: \(hw) tokens for \(height)×\(width)")
        let y = Tensor(uninitialized: [n, c, height, width])
        for b in 0..<n { transpose(x.pointer + b * c * hw, rows: hw, cols: c, into: y.pointer + b * c * hw) }
        return y
    }

    /// Blocked transpose of a rows×cols matrix.
    static func transpose(_ src: UnsafeMutablePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        let tile = 32
        Parallel.forEachChunk((rows + tile - 1) / tile) { range in
            for bi in range {
                let r0 = bi * tile, r1 = min(rows, r0 + tile)
                var c0 = 0
                while c0 < cols {
                    let c1 = min(cols, c0 + tile)
                    for r in r0..<r1 { for cc in c0..<c1 { dst[cc * rows + r] = src[r * cols + cc] } }
                    c0 = c1
                }
            }
        }
    }

    /// Nearest-neighbour resize of NCHW to an explicit size, torch's `mode="nearest"`
    /// (src = floor(dst · in / out)); for ×2 it is pixel duplication.
    public static func upsampleNearest(_ x: Tensor, height oh: Int, width ow: Int) -> Tensor {
        precondition(x.rank == 4 && oh > 0 && ow > 0 && x.shape[2] > 0 && x.shape[3] > 0, "upsampleNearest: \(x.shape) to \(oh)×\(ow)")
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let y = Tensor(uninitialized: [n, c, oh, ow])
        let sy = Float(h) / Float(oh), sx = Float(w) / Float(ow)
        let xs = (0..<ow).map { min(w - 1, Int((Float($0) * sx).rounded(.down))) }
        Parallel.forEachChunk(n * c, grain: 4) { range in
            for p in range {
                let src = x.pointer + p * h * w, dst = y.pointer + p * oh * ow
                for oy in 0..<oh {
                    let iy = min(h - 1, Int((Float(oy) * sy).rounded(.down)))
                    let line = src + iy * w, out = dst + oy * ow
                    for ox in 0..<ow { out[ox] = line[xs[ox]] }
                }
            }
        }
        return y
    }
}
