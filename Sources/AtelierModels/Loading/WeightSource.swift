import AtelierKernels

/// Where named weights come from. Networks only ever ask for diffusers names; foreign layouts
/// (ldm single files, transformers-4 prefixes) are adapters that rename on lookup.
public protocol WeightSource: AnyObject {
    /// Names a user recognises in error messages (a file path).
    var sourceDescription: String { get }
    var keys: [String] { get }
    func contains(_ key: String) -> Bool
    func shape(of key: String) -> [Int]?
    func tensor(_ key: String) throws -> Tensor
    /// Drops the pages behind `tensor` from the resident set when it was read in place from a
    /// mapped file (the bf16 load rounds each weight into an owned copy: the fp32 pages it read
    /// are then dead weight in RSS). Nothing happens for owned memory.
    func releaseResidentPages(of tensor: Tensor)
}

extension WeightSource {
    public func releaseResidentPages(of tensor: Tensor) {}

    /// Total elements over every tensor the source names.
    public var parameterCount: Int { keys.reduce(0) { $0 + (shape(of: $1)?.reduce(1, *) ?? 0) } }
}

/// One or more safetensors files (shards) seen as a single namespace.
public final class SafeTensorsWeights: WeightSource {
    public let files: [SafeTensorsFile]
    private var index: [String: SafeTensorsFile] = [:]

    public init(files: [SafeTensorsFile]) {
        self.files = files
        for f in files { for n in f.names { index[n] = f } }
    }

    public convenience init(urls: [URLConvertible]) throws {
        try self.init(files: urls.map { try SafeTensorsFile(url: $0.url) })
    }

    public var sourceDescription: String { files.map { $0.url.path }.joined(separator: ", ") }
    public var keys: [String] { index.keys.sorted() }
    public func contains(_ key: String) -> Bool { index[key] != nil }
    public func shape(of key: String) -> [Int]? { index[key]?.info(key)?.shape }
    public func tensor(_ key: String) throws -> Tensor {
        guard let f = index[key] else { throw ModelError.missingWeight(key: key, source: sourceDescription) }
        return try f.tensor(key)
    }
    public func releaseResidentPages(of tensor: Tensor) {
        for f in files where f.isMapped(tensor) { f.releaseResidentPages(of: tensor) }
    }
}

/// Adds or strips a key prefix: transformers 4.x saves `text_model.…`, 5.x saves without.
public final class PrefixedWeights: WeightSource {
    let base: WeightSource
    let prefix: String
    public init(_ base: WeightSource, prefix: String) { self.base = base; self.prefix = prefix }
    public var sourceDescription: String { base.sourceDescription }
    public var keys: [String] {
        base.keys.compactMap { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : nil }
    }
    public func contains(_ key: String) -> Bool { base.contains(prefix + key) }
    public func shape(of key: String) -> [Int]? { base.shape(of: prefix + key) }
    public func tensor(_ key: String) throws -> Tensor { try base.tensor(prefix + key) }
    public func releaseResidentPages(of tensor: Tensor) { base.releaseResidentPages(of: tensor) }
}
