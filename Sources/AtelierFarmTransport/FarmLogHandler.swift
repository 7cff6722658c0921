import Foundation
import Logging

/// How farm processes write their log: `text` for people (one line, metadata as key=value) or
/// `json` for log shippers (one JSON object per line: timestamp, level, message, label, metadata).
public enum FarmLogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// The swift-log handler of the coordinator and the worker: every line carries the ids it is
/// about (job_id, task_id, worker_id, peer, kind) as metadata, so a log shipper can follow one
/// job across processes without parsing prose. Writes whole lines under one lock, so lines from
/// concurrent request threads never interleave.
public struct FarmLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let format: FarmLogFormat
    let sink: FarmLogSink

    /// A handler writing to `sink` (standard error by default).
    public init(label: String, format: FarmLogFormat, level: Logger.Level, sink: FarmLogSink = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        let text: String
        switch format {
        case .json: text = Self.jsonLine(timestamp: Date(), level: level, message: message.description, label: label, metadata: all)
        case .text: text = Self.textLine(timestamp: Date(), level: level, message: message.description, metadata: all)
        }
        sink.write(text + "\n")
    }

    /// Makes every `Logger` of this process a `FarmLogHandler` with `format` and `level`.
    /// Once per process (swift-log's rule); later calls are ignored.
    public static func bootstrap(format: FarmLogFormat, level: Logger.Level, sink: FarmLogSink = .standardError) {
        bootstrapLock.lock()
        defer { bootstrapLock.unlock() }
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in FarmLogHandler(label: label, format: format, level: level, sink: sink) }
    }

    nonisolated(unsafe) private static var bootstrapped = false
    private static let bootstrapLock = NSLock()

    /// `{"timestamp":…,"level":…,"message":…,"label":…,"metadata":{…}}`, no newline.
    public static func jsonLine(timestamp: Date, level: Logger.Level, message: String, label: String,
                                metadata: Logger.Metadata) -> String {
        let object: [String: Any] = [
            "timestamp": timestampText(timestamp),
            "level": level.rawValue,
            "message": message,
            "label": label,
            "metadata": metadata.mapValues(jsonValue),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            // Every value above is a string, array or dictionary of them; this cannot happen, but a
            // log line must never take the process down.
            return #"{"level":"error","message":"unencodable log line"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// `2026-12-05T01:02:03.456Z info message key=value …` (keys sorted; values with spaces quoted).
    public static func textLine(timestamp: Date, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(timestampText(timestamp)) \(level.rawValue) \(message)"
        for key in metadata.keys.sorted() {
            let value = "\(metadata[key]!)"
            line += value.contains(where: { $0 == " " || $0 == "\"" }) || value.isEmpty
                ? " \(key)=\"\(value.replacingOccurrences(of: "\"", with: "\\\""))\"" : " \(key)=\(value)"
        }
        return line
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(jsonValue)
        case .dictionary(let d): return d.mapValues(jsonValue)
        }
    }

    /// ISO 8601 in UTC with milliseconds. A fresh formatter per call: they are not thread-safe.
    static func timestampText(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Where log lines go: standard error, or (tests, embedding) a closure. One lock per sink, so a
/// line is written whole.
public final class FarmLogSink: @unchecked Sendable {
    private let lock = NSLock()
    private let writer: (String) -> Void

    public init(_ writer: @escaping (String) -> Void) { self.writer = writer }

    public static let standardError = FarmLogSink { FileHandle.standardError.write(Data($0.utf8)) }

    func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        writer(line)
    }
}

/// A handler that passes only the message to a closure: for embedders (and tests) that collect
/// a worker's lines as plain strings.
public struct MessageClosureLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let sink: FarmLogSink

    public init(_ write: @escaping (String) -> Void) { sink = FarmLogSink(write) }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        sink.write(message.description)
    }
}
