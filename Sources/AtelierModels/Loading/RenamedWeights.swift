import AtelierKernels

/// A weight source seen through a rename table: each diffusers name points at a key of the
/// underlying file, optionally a row range of it (OpenCLIP's fused `in_proj_weight`).
/// This is the "one small rename table per foreign layout".
public final class RenamedWeights: WeightSource {
    public struct Entry: Sendable {
        public let key: String
        /// Rows [start, start+count) of the first axis, or the whole tensor.
        public let rows: Range<Int>?
        public init(_ key: String, rows: Range<Int>? = nil) { self.key = key; self.rows = rows }
    }

    let base: WeightSource
    public let table: [String: Entry]

    public init(_ base: WeightSource, table: [String: Entry]) {
        self.base = base
        self.table = table
    }

    public var sourceDescription: String { base.sourceDescription }
    public var keys: [String] { table.keys.sorted() }
    public func contains(_ key: String) -> Bool { table[key] != nil }

    public func shape(of key: String) -> [Int]? {
        guard let e = table[key], var s = base.shape(of: e.key) else { return nil }
        if let r = e.rows {
            guard !s.isEmpty else { return s }  // a scalar has no rows; tensor(_:) reports it
            s[0] = r.count
        }
        return s
    }

    public func tensor(_ key: String) throws -> Tensor {
        guard let e = table[key] else { throw ModelError.missingWeight(key: key, source: sourceDescription) }
        let t = try base.tensor(e.key)
        guard let r = e.rows else { return t }
        guard t.rank >= 1, r.lowerBound >= 0, r.upperBound <= t.shape[0] else {
            throw ModelError.unexpectedShape(key: e.key, expected: "at least \(r.upperBound) rows (fused q, k, v)",
                                             found: t.shape, source: sourceDescription)
        }
        return t.rows(r.lowerBound, r.count)
    }

    public func releaseResidentPages(of tensor: Tensor) { base.releaseResidentPages(of: tensor) }
}

extension RenamedWeights {
    /// Official SD2 diffusers VAE files still name the mid-block attention
    /// `query/key/value/proj_attn` (deprecated names, SD2-SPEC §6.2); everything else passes through.
    public static func legacyVAEAttention(_ base: WeightSource) -> WeightSource {
        let renames = ["query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"]
        guard base.keys.contains(where: { $0.contains("attentions.0.query.") || $0.contains("attentions.0.proj_attn.") }) else {
            return base
        }
        var table: [String: Entry] = [:]
        for k in base.keys {
            var name = k
            for (old, new) in renames {
                for part in ["weight", "bias"] where k.hasSuffix("attentions.0.\(old).\(part)") {
                    name = String(k.dropLast("\(old).\(part)".count)) + "\(new).\(part)"
                }
            }
            table[name] = Entry(k)
        }
        return RenamedWeights(base, table: table)
    }
}
