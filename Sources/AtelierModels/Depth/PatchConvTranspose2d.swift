import AtelierKernels

/// `nn.ConvTranspose2d(c, c, kernel_size=f, stride=f, padding=0)` — the only transposed conv DPT
/// uses (reassemble factors > 1). With kernel = stride the output blocks do not overlap: every
/// input pixel writes its own f×f block, out[co, y·f+i, x·f+j] = b[co] + Σ_ci W[ci, co, i, j]·x[ci, y, x],
/// so the whole layer is one GEMM (Wᵀ as [co·f·f, ci] times the input as [ci, h·w]) and a scatter.
struct PatchConvTranspose2d {
    let weight: Tensor  // [in, out, f, f], PyTorch's transposed-conv layout
    let bias: Tensor
    let factor: Int

    init(_ w: Weights, inChannels: Int, outChannels: Int, factor: Int) throws {
        weight = try w.load("weight", shape: [inChannels, outChannels, factor, factor])
        bias = try w.load("bias", shape: [outChannels])
        self.factor = factor
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = weight.shape[1], f = factor
        let rows = cout * f * f, hw = h * w
        let blocks = UnsafeMutablePointer<Float>.allocate(capacity: rows * hw)
        defer { blocks.deallocate() }
        let out = Tensor(uninitialized: [n, cout, h * f, w * f])
        let ow = w * f
        for b in 0..<n {
            BLAS.gemm(transA: true, m: rows, n: hw, k: cin, a: weight.pointer, lda: rows,
                      b: x.pointer + b * cin * hw, ldb: hw, c: blocks, ldc: hw)
            let dst = out.pointer + b * cout * hw * f * f
            Parallel.forEachChunk(cout, grain: 1) { range in
                for co in range {
                    let bv = bias.pointer[co]
                    let plane = dst + co * hw * f * f
                    for i in 0..<f {
                        for j in 0..<f {
                            let src = blocks + ((co * f + i) * f + j) * hw
                            for y in 0..<h {
                                let line = plane + (y * f + i) * ow + j
                                for xx in 0..<w { line[xx * f] = src[y * w + xx] + bv }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
