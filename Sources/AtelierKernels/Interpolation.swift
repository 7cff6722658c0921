import Foundation

/// `torch.nn.functional.interpolate` on NCHW float32 tensors, reproducing torch's CPU kernels
/// (`aten/src/ATen/native/UpSample.h`, `cpu/UpSampleKernel.cpp`) operation for operation in
/// float32 — including where the compiler fused a multiply and an add into one FMA. The reference
/// is the torch 2.13 x86-64 wheel running its AVX-512 kernels; which products it fuses was
/// established by matching its outputs bit for bit (impulse responses for the weights, random
/// inputs for the accumulation). A torch build without FMA (or with another contraction pattern)
/// differs from this by about one ulp.
///
/// Used by depth2img (`bicubic`: the depth map to latent size) and the DPT depth estimator
/// (`bilinearAlignCorners`: fusion and head upsampling). Neither antialiases: unlike PIL, torch's
/// default interpolation samples the source at 4 (or 2) taps whatever the scale.
public enum Interpolation {
    /// `F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)`.
    ///
    /// Keys cubic convolution with A = −0.75; source coordinate `(dst + 0.5) · in/out − 0.5` with
    /// `in/out` computed in float32; the four taps are clamped to the border (replicate).
    public static func bicubic(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 4 && height > 0 && width > 0, "bicubic expects NCHW and a positive size, got \(x.shape) → \(height)x\(width)")
        let rows = cubicTaps(inSize: x.shape[2], outSize: height)
        let cols = cubicTaps(inSize: x.shape[3], outSize: width)
        return separable(x, height: height, width: width, rows: rows, cols: cols)
    }

    /// `F.interpolate(x, size=(height, width), mode="bilinear", align_corners=True)`.
    ///
    /// Source coordinate `dst · (in − 1)/(out − 1)` (0 when out = 1), two taps, the second clamped
    /// to the last pixel; an axis whose size is unchanged is copied.
    ///
    /// torch picks one of two kernels, which round differently, and so does this: its channels-last
    /// kernel (weights multiplied out per corner; channels in whole 16-lane AVX-512 vectors use one
    /// summation order, the remaining channels another) when `height + width ≤ 128`, otherwise the
    /// generic separable-weights kernel. (torch also takes the channels-last kernel for 3-channel
    /// inputs when it runs single-threaded, and for 1×1 inputs, where both kernels agree anyway;
    /// the single-threaded 3-channel case is not reproduced.)
    public static func bilinearAlignCorners(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 4 && height > 0 && width > 0, "bilinear expects NCHW and a positive size, got \(x.shape) → \(height)x\(width)")
        let rows = linearTaps(inSize: x.shape[2], outSize: height)
        let cols = linearTaps(inSize: x.shape[3], outSize: width)
        if height + width <= 128 {
            return bilinearChannelsLast(x, height: height, width: width, rows: rows, cols: cols)
        }
        return separable(x, height: height, width: width, rows: rows, cols: cols)
    }

    /// Source indices and weights for each output position along one axis.
    struct Taps {
        let count: Int          // taps per output position
        let indices: [Int]      // outSize * count, already clamped
        let weights: [Float]    // outSize * count
    }

    /// torch `HelperInterpCubic::compute_indices_weights`.
    static func cubicTaps(inSize: Int, outSize: Int) -> Taps {
        // area_pixel_compute_scale<float>: static_cast<float>(in) / out, the int64 divisor promoted to float.
        let scale = Float(inSize) / Float(outSize)
        var indices = [Int](repeating: 0, count: outSize * 4)
        var weights = [Float](repeating: 0, count: outSize * 4)
        for i in 0..<outSize {
            // area_pixel_compute_source_index(scale, i, align_corners=false, cubic=true): no clamp
            // at 0; `scale * (i + 0.5) - 0.5` is one fused multiply-add in torch's build.
            let real = (-0.5 as Float).addingProduct(scale, Float(i) + 0.5)
            let (index, t) = guardIndexAndLambda(real, inSize: inSize)
            let c = cubicCoefficients(t)
            for j in 0..<4 {
                indices[4 * i + j] = min(max(index - 1 + j, 0), inSize - 1)
                weights[4 * i + j] = c[j]
            }
        }
        return Taps(count: 4, indices: indices, weights: weights)
    }

    /// torch `HelperInterpLinear::compute_indices_weights` with `align_corners=True`.
    static func linearTaps(inSize: Int, outSize: Int) -> Taps {
        let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        var indices = [Int](repeating: 0, count: outSize * 2)
        var weights = [Float](repeating: 0, count: outSize * 2)
        for i in 0..<outSize {
            if outSize == inSize {
                indices[2 * i] = i; indices[2 * i + 1] = i
                weights[2 * i] = 1; weights[2 * i + 1] = 0
                continue
            }
            let real = scale * Float(i)
            let (index, lambda1) = guardIndexAndLambda(real, inSize: inSize)
            indices[2 * i] = index
            indices[2 * i + 1] = index + (index < inSize - 1 ? 1 : 0)
            weights[2 * i] = 1 - lambda1
            weights[2 * i + 1] = lambda1
        }
        return Taps(count: 2, indices: indices, weights: weights)
    }

    /// torch `guard_index_and_lambda`: floor, capped at the last index; the fraction clamped to [0, 1].
    @inline(__always)
    static func guardIndexAndLambda(_ real: Float, inSize: Int) -> (Int, Float) {
        let index = min(Int(real.rounded(.down)), inSize - 1)
        let lambda = min(max(real - Float(index), 0), 1)
        return (index, lambda)
    }

    /// torch `get_cubic_upsample_coefficients` in float32. `x + 1.0` and `1.0 - t` are double
    /// expressions in the C++ source, rounded to float when passed on; mirrored here.
    static func cubicCoefficients(_ t: Float) -> [Float] {
        let a: Float = -0.75
        let x1 = t
        let x2 = Float(1.0 - Double(t))
        return [
            cubicConvolution2(Float(Double(x1) + 1.0), a),
            cubicConvolution1(x1, a),
            cubicConvolution1(x2, a),
            cubicConvolution2(Float(Double(x2) + 1.0), a),
        ]
    }

    /// `((A + 2) * x - (A + 3)) * x * x + 1`, with the first multiply-subtract fused (as compiled).
    @inline(__always)
    static func cubicConvolution1(_ x: Float, _ a: Float) -> Float {
        let p = (-(a + 3)).addingProduct(a + 2, x)
        return p * x * x + 1
    }

    /// `((A * x - 5 * A) * x + 8 * A) * x - 4 * A`, with the first two steps fused (as compiled).
    @inline(__always)
    static func cubicConvolution2(_ x: Float, _ a: Float) -> Float {
        let p = (-(5 * a)).addingProduct(a, x)
        let q = (8 * a).addingProduct(p, x)
        return q * x - 4 * a
    }

    /// `t0·w0 + t1·w1 + t2·w2 + t3·w3` as torch's unrolled loop computes it:
    /// `fma(t3, w3, fma(t2, w2, fma(t0, w0, t1·w1)))`. With two taps, `fma(t0, w0, t1·w1)`.
    @inline(__always)
    static func weightedSum(_ t: (Float, Float, Float, Float), _ w: UnsafePointer<Float>, taps: Int) -> Float {
        var acc = (t.1 * w[1]).addingProduct(t.0, w[0])
        if taps == 4 {
            acc.addProduct(t.2, w[2])
            acc.addProduct(t.3, w[3])
        }
        return acc
    }

    /// torch's generic `Interpolate<2, …>` kernel: for each output pixel, a weighted sum over the
    /// column taps of each row tap, then a weighted sum of those over the row taps (both as
    /// `weightedSum`).
    private static func separable(_ x: Tensor, height: Int, width: Int, rows: Taps, cols: Taps) -> Tensor {
        let (n, c, inH, inW) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [n, c, height, width])
        let planes = n * c
        let src = x.pointer, dst = out.pointer
        let rt = rows.count, ct = cols.count
        rows.indices.withUnsafeBufferPointer { ri in
        rows.weights.withUnsafeBufferPointer { rw in
        cols.indices.withUnsafeBufferPointer { ci in
        cols.weights.withUnsafeBufferPointer { cw in
            guard let riBase = ri.baseAddress, let rwBase = rw.baseAddress,
                  let ciBase = ci.baseAddress, let cwBase = cw.baseAddress else { return }
            Parallel.forEachChunk(planes * height, grain: max(1, 4096 / max(width, 1))) { range in
                for job in range {
                    let plane = job / height, oy = job % height
                    let inPlane = src + plane * inH * inW
                    let outRow = dst + (plane * height + oy) * width
                    let rIdx = riBase + oy * rt, rWts = rwBase + oy * rt
                    for ox in 0..<width {
                        let cIdx = ciBase + ox * ct, cWts = cwBase + ox * ct
                        func rowSum(_ r: Int) -> Float {
                            let line = inPlane + rIdx[r] * inW
                            return ct == 4
                                ? weightedSum((line[cIdx[0]], line[cIdx[1]], line[cIdx[2]], line[cIdx[3]]), cWts, taps: 4)
                                : weightedSum((line[cIdx[0]], line[cIdx[1]], 0, 0), cWts, taps: 2)
                        }
                        outRow[ox] = rt == 4
                            ? weightedSum((rowSum(0), rowSum(1), rowSum(2), rowSum(3)), rWts, taps: 4)
                            : weightedSum((rowSum(0), rowSum(1), 0, 0), rWts, taps: 2)
                    }
                }
            }
        }
        }
        }
        }
        return out
    }

    /// Channels per AVX-512 vector in torch's channels-last bilinear kernel.
    static let channelsLastVectorWidth = 16

    /// torch `cpu_upsample_linear_channels_last` (2-D): corner weights `h·w` multiplied out; channels
    /// inside whole 16-lane vectors sum `fma(i00, w00, fma(i01, w01, fma(i11, w11, i10·w10)))`,
    /// the remaining channels `fma(i11, w11, fma(i10, w10, fma(i00, w00, i01·w01)))`.
    private static func bilinearChannelsLast(_ x: Tensor, height: Int, width: Int, rows: Taps, cols: Taps) -> Tensor {
        let (n, c, inH, inW) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [n, c, height, width])
        let vectorChannels = c - c % channelsLastVectorWidth
        let src = x.pointer, dst = out.pointer
        Parallel.forEachChunk(n * c, grain: 1) { range in
            for plane in range {
                let inPlane = src + plane * inH * inW
                let outPlane = dst + plane * height * width
                let vectorOrder = plane % c < vectorChannels
                for oy in 0..<height {
                    let y0 = rows.indices[2 * oy], y1 = rows.indices[2 * oy + 1]
                    let h0 = rows.weights[2 * oy], h1 = rows.weights[2 * oy + 1]
                    for ox in 0..<width {
                        let x0 = cols.indices[2 * ox], x1 = cols.indices[2 * ox + 1]
                        let w0 = cols.weights[2 * ox], w1 = cols.weights[2 * ox + 1]
                        let (w00, w01, w10, w11) = (h0 * w0, h0 * w1, h1 * w0, h1 * w1)
                        let i00 = inPlane[y0 * inW + x0], i01 = inPlane[y0 * inW + x1]
                        let i10 = inPlane[y1 * inW + x0], i11 = inPlane[y1 * inW + x1]
                        var acc: Float
                        if vectorOrder {
                            acc = (i10 * w10).addingProduct(i11, w11)
                            acc.addProduct(i01, w01)
                            acc.addProduct(i00, w00)
                        } else {
                            acc = (i01 * w01).addingProduct(i00, w00)
                            acc.addProduct(i10, w10)
                            acc.addProduct(i11, w11)
                        }
                        outPlane[oy * width + ox] = acc
                    }
                }
            }
        }
        return out
    }
}
