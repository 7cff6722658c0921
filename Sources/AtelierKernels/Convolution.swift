import AtelierKernelsC

/// 2-D convolution, NCHW, as one GEMM per image: weight [cout, cin·kh·kw] × the im2col matrix.
///
/// With the own kernels the im2col matrix is never built: B's packing reads the input image
/// directly (implicit GEMM), and the bias is added in the GEMM's epilogue. On the OpenBLAS path
/// the column buffer is built for a band of output rows at a time, capped at `columnBudget`
/// floats, so a 960-channel 3×3 conv at 96×96 never needs the full 318 MB column matrix.
public enum Convolution {
    /// Cap on the im2col buffer (floats); 8 Mi floats = 32 MB.
    nonisolated(unsafe) public static var columnBudget = 8 << 20

    /// The same with weights in either precision: bf16 weights run the bf16 GEMM (own kernels,
    /// whatever the backend: OpenBLAS has no bf16 path), the input rounded to bf16 as it is packed;
    /// 3×3 layers big enough for Winograd run it in fp32 from the bf16 weights instead, except on
    /// AMX tiles (see `WinogradConvolution.takesBF16Weights`).
    public static func conv2d(_ input: Tensor, weight: LayerWeight, bias: Tensor?,
                              stride: Int = 1, padding: Padding2D = .none) -> Tensor {
        switch weight {
        case .fp32(let w): return conv2d(input, weight: w, bias: bias, stride: stride, padding: padding)
        case .fp32Packed(let w):
            guard BLAS.backend == .atelier else {
                // OpenBLAS reads plain matrices: the fallback pays for an unpacked copy per call.
                return conv2d(input, weight: w.unpacked(), bias: bias, stride: stride, padding: padding)
            }
            if let y = winograd(input, weightShape: w.shape, weights: .packed(w), bias: bias, stride: stride, padding: padding) {
                return y
            }
            return conv2d(input, packed: w, bias: bias, stride: stride, padding: padding)
        case .bf16(let w):
            if WinogradConvolution.takesBF16Weights,
               let y = winograd(input, weightShape: w.shape, weights: .bf16(w.pointer), bias: bias, stride: stride, padding: padding) {
                return y
            }
            return conv2d(input, bf16: w, bias: bias, stride: stride, padding: padding)
        }
    }

    /// The layer in Winograd form when its shape takes it (`WinogradConvolution.applies`), else nil.
    static func winograd(_ input: Tensor, weightShape: [Int], weights: WinogradConvolution.Weights, bias: Tensor?,
                         stride: Int, padding: Padding2D) -> Tensor? {
        let (cout, cin, kh, kw) = (weightShape[0], weightShape[1], weightShape[2], weightShape[3])
        guard WinogradConvolution.applies(kh: kh, kw: kw, stride: stride, cin: cin, cout: cout, images: input.shape[0],
                                          hout: outSize(input.shape[2], kh, stride, padding.top + padding.bottom),
                                          wout: outSize(input.shape[3], kw, stride, padding.left + padding.right)) else { return nil }
        precondition(input.rank == 4 && input.shape[1] == cin, "conv2d: input \(input.shape) vs weight \(weightShape)")
        return WinogradConvolution.conv2d(input, weights: weights, cout: cout, bias: bias, padding: padding)
    }

    /// The own kernels on weights packed at load: the same products, bit for bit, as `conv2d` on
    /// the plain tensor, without re-packing the weights for every image of every call.
    static func conv2d(_ input: Tensor, packed weight: PackedWeightMatrix, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        ownKernels(input, weightShape: weight.shape, a: weight.operand, bias: bias, stride: stride,
                   padding: padding, precision: .fp32)
    }

    static func conv2d(_ input: Tensor, bf16 weight: BF16Tensor, bias: Tensor?, stride: Int, padding: Padding2D) -> Tensor {
        ownKernels(input, weightShape: weight.shape, a: .bf16(weight.pointer, ld: weight.count / max(1, weight.shape[0])),
                   bias: bias, stride: stride, padding: padding, precision: .bf16)
    }

    /// Output length of a convolution along one axis (≤ 0: the kernel does not fit).
    static func outSize(_ length: Int, _ kernel: Int, _ stride: Int, _ padding: Int) -> Int {
        (length + padding - kernel) / stride + 1
    }

    /// One GEMM per image on the own kernels: A is the weight matrix [cout, cin·kh·kw] in whatever
    /// form `a` holds it, B the image (1×1) or its implicit im2col matrix, the bias in the epilogue.
    static func ownKernels(_ input: Tensor, weightShape: [Int], a: OwnGEMM.ASource, bias: Tensor?,
                           stride: Int, padding: Padding2D, precision: OwnGEMM.Precision) -> Tensor {
        precondition(input.rank == 4 && weightShape.count == 4, "conv2d wants NCHW input and OIHW weight")
        let (n, cin, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (cout, wcin, kh, kw) = (weightShape[0], weightShape[1], weightShape[2], weightShape[3])
        precondition(wcin == cin, "conv2d: input has \(cin) channels, weight expects \(wcin)")
        let hout = (h + padding.top + padding.bottom - kh) / stride + 1
        let wout = (w + padding.left + padding.right - kw) / stride + 1
        precondition(hout > 0 && wout > 0, "conv2d: output would be empty")
        let out = Tensor(uninitialized: [n, cout, hout, wout])
        let k = cin * kh * kw
        let planeOut = hout * wout
        let direct = kh == 1 && kw == 1 && stride == 1 && padding == .none
        BLAS.flops &+= 2 * n * cout * planeOut * k
        for b in 0..<n {
            let src = input.pointer + b * cin * h * w
            let dst = out.pointer + b * cout * planeOut
            let source: OwnGEMM.BSource = direct
                ? .matrix(src, ld: h * w, transposed: false)
                : .convolution(ak_conv_geometry(input: src, channels: Int32(cin), height: Int32(h), width: Int32(w),
                                                kh: Int32(kh), kw: Int32(kw), stride: Int32(stride),
                                                pad_top: Int32(padding.top), pad_left: Int32(padding.left),
                                                out_h: Int32(hout), out_w: Int32(wout)))
            OwnGEMM.multiply(m: cout, n: planeOut, k: k, a: a, b: source,
                             c: dst, ldc: planeOut, biasRow: bias?.pointer, precision: precision)
        }
        return out
    }

    public static func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?,
                              stride: Int = 1, padding: Padding2D = .none) -> Tensor {
        precondition(input.rank == 4 && weight.rank == 4, "conv2d wants NCHW input and OIHW weight")
        let (n, cin, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (cout, wcin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(wcin == cin, "conv2d: input has \(cin) channels, weight expects \(wcin)")
        let hout = (h + padding.top + padding.bottom - kh) / stride + 1
        let wout = (w + padding.left + padding.right - kw) / stride + 1
        precondition(hout > 0 && wout > 0, "conv2d: output would be empty")
        if BLAS.backend == .atelier {
            if WinogradConvolution.applies(kh: kh, kw: kw, stride: stride, cin: cin, cout: cout, images: n, hout: hout, wout: wout) {
                return WinogradConvolution.conv2d(input, weights: .plain(weight.pointer), cout: cout, bias: bias, padding: padding)
            }
            return ownKernels(input, weightShape: weight.shape, a: .matrix(weight.pointer, ld: cin * kh * kw, transposed: false),
                              bias: bias, stride: stride, padding: padding, precision: .fp32)
        }
        let out = Tensor(uninitialized: [n, cout, hout, wout])
        let k = cin * kh * kw
        let planeOut = hout * wout
        let direct = kh == 1 && kw == 1 && stride == 1 && padding == .none
        let bandRows = max(1, min(hout, columnBudget / max(1, k * wout)))
        let column = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * bandRows * wout)
        defer { column?.deallocate() }

        for b in 0..<n {
            let src = input.pointer + b * cin * h * w
            let dst = out.pointer + b * cout * planeOut
            if direct {
                BLAS.gemm(m: cout, n: planeOut, k: cin, a: weight.pointer, lda: cin,
                          b: src, ldb: h * w, c: dst, ldc: planeOut)
                continue
            }
            guard let column else { continue }
            var row0 = 0
            while row0 < hout {
                let rows = min(bandRows, hout - row0)
                let cols = rows * wout
                im2col(src, channels: cin, height: h, width: w, kh: kh, kw: kw, stride: stride,
                       padding: padding, rowStart: row0, rows: rows, outWidth: wout, into: column)
                BLAS.gemm(m: cout, n: cols, k: k, a: weight.pointer, lda: k,
                          b: column, ldb: cols, c: dst + row0 * wout, ldc: planeOut)
                row0 += rows
            }
        }
        if let bias { addChannelBias(out, bias) }
        return out
    }

    /// Unrolls input patches for output rows [rowStart, rowStart+rows) into a [k, rows·wout] matrix.
    static func im2col(_ src: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                       kh: Int, kw: Int, stride: Int, padding: Padding2D,
                       rowStart: Int, rows: Int, outWidth: Int,
                       into column: UnsafeMutablePointer<Float>) {
        let cols = rows * outWidth
        Parallel.forEachChunk(channels, grain: 8) { range in
            for c in range {
                let plane = src + c * height * width
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let rowPtr = column + ((c * kh + ki) * kw + kj) * cols
                        for r in 0..<rows {
                            let oy = rowStart + r
                            let iy = oy * stride - padding.top + ki
                            let dst = rowPtr + r * outWidth
                            if iy < 0 || iy >= height {
                                dst.update(repeating: 0, count: outWidth)
                                continue
                            }
                            let line = plane + iy * width
                            if stride == 1 {
                                // Valid ox range: 0 <= ox - left + kj < width.
                                let lo = max(0, padding.left - kj)
                                let hi = min(outWidth, width + padding.left - kj)
                                if lo > 0 { dst.update(repeating: 0, count: min(lo, outWidth)) }
                                if hi > lo { (dst + lo).update(from: line + (lo - padding.left + kj), count: hi - lo) }
                                if hi < outWidth { (dst + max(hi, 0)).update(repeating: 0, count: outWidth - max(hi, 0)) }
                            } else {
                                for ox in 0..<outWidth {
                                    let ix = ox * stride - padding.left + kj
                                    dst[ox] = (ix >= 0 && ix < width) ? line[ix] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out[b, c, :, :] += bias[c]
    public static func addChannelBias(_ out: Tensor, _ bias: Tensor) {
        let (n, c) = (out.shape[0], out.shape[1])
        let plane = out.count / max(1, n * c)
        Parallel.forEachChunk(n * c, grain: 16) { range in
            for i in range {
                let v = bias.pointer[i % c]
                let p = out.pointer + i * plane
                for j in 0..<plane { p[j] += v }
            }
        }
    }
}
