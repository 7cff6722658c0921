import Foundation

/// Lets loaders take either a URL or a path string.
public protocol URLConvertible { var url: URL { get } }
extension URL: URLConvertible { public var url: URL { self } }
extension String: URLConvertible { public var url: URL { URL(fileURLWithPath: self) } }
