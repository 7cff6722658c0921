import AtelierFarmCoordinator
import AtelierImaging
import Foundation

/// Downscaled PNGs of finished images for the status page, made from the result store's files
/// (Lanczos, at most `maxSide` on the longer side) and kept in a small cache: a result never
/// changes once stored, and a page reloading every few seconds must not decode a 4096² upscale
/// each time.
final class Thumbnails: @unchecked Sendable {
    static let maxSide = 128
    static let capacity = 256

    private let lock = NSLock()
    private var cache = [String: [UInt8]]()
    private var order = [String]()

    /// The thumbnail of image `index` of `jobID`; NOT_FOUND (`CoordinatorError`) while it is not
    /// rendered; a decode failure as `ObservabilityError`.
    func png(jobID: String, index: Int, store: any CoordinatorStore, directory: URL) throws -> [UInt8] {
        let key = "\(jobID)/\(index)"
        lock.lock()
        if let hit = cache[key] { lock.unlock(); return hit }
        lock.unlock()
        let relative = try store.resultPath(jobID: jobID, index: index)
        let url = directory.appendingPathComponent(relative)
        // Only files inside the coordinator directory (the store records relative paths; check anyway).
        guard url.standardizedFileURL.path.hasPrefix(directory.standardizedFileURL.path + "/") else {
            throw ObservabilityError("result path \"\(relative)\" is outside the coordinator directory")
        }
        let image = try PNGCodec.read(contentsOf: url).rgb()
        let scale = min(1, Double(Self.maxSide) / Double(max(image.width, image.height)))
        let width = max(1, Int((Double(image.width) * scale).rounded()))
        let height = max(1, Int((Double(image.height) * scale).rounded()))
        let small = scale < 1 ? try ImageResampler.resize(image, width: width, height: height, filter: .lanczos) : image
        let png = try PNGCodec.encode(small)
        lock.lock()
        if cache[key] == nil {
            cache[key] = png
            order.append(key)
            if order.count > Self.capacity { cache[order.removeFirst()] = nil }
        }
        lock.unlock()
        return png
    }
}
