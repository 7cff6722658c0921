import AtelierKernels

/// Element-wise maps over same-shaped tensors, used by the schedulers to express one step as a
/// per-element formula. Each formula is written in the same operation order as the diffusers
/// expression it mirrors, so that every intermediate is rounded to float32 just as torch's
/// separate tensor operations round it (Swift does not contract `a*b + c` into an FMA).
enum SchedulerMath {
    @inline(__always)
    static func map(_ a: Tensor, _ body: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let pa = a.pointer, po = out.pointer
        for i in 0..<a.count { po[i] = body(pa[i]) }
        return out
    }

    @inline(__always)
    static func map(_ a: Tensor, _ b: Tensor, _ body: (Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count, "shape mismatch \(a.shape) vs \(b.shape)")
        let out = Tensor(uninitialized: a.shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        for i in 0..<a.count { po[i] = body(pa[i], pb[i]) }
        return out
    }

    @inline(__always)
    static func map(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ body: (Float, Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count && a.count == c.count, "shape mismatch \(a.shape) vs \(b.shape) vs \(c.shape)")
        let out = Tensor(uninitialized: a.shape)
        let pa = a.pointer, pb = b.pointer, pc = c.pointer, po = out.pointer
        for i in 0..<a.count { po[i] = body(pa[i], pb[i], pc[i]) }
        return out
    }

    @inline(__always)
    static func map(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _ d: Tensor, _ body: (Float, Float, Float, Float) -> Float
    ) -> Tensor {
        precondition(a.count == b.count && a.count == c.count && a.count == d.count, "shape mismatch")
        let out = Tensor(uninitialized: a.shape)
        let pa = a.pointer, pb = b.pointer, pc = c.pointer, pd = d.pointer, po = out.pointer
        for i in 0..<a.count { po[i] = body(pa[i], pb[i], pc[i], pd[i]) }
        return out
    }
}
