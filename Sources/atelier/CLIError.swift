import AtelierRequests

/// A refusal of the command line: printed as one line ("Error: …") with exit status 1, without
/// ArgumentParser's usage footer (which `ValidationError` would add after every message; a
/// wrong value is not a usage problem, and the footer buried the one line that says what to do).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// A user value as a message may show it (cut to ~80 characters).
    static func echo(_ value: String) -> String { RequestValidationError.echo(value) }
}

/// Range checks for the numeric options that are not part of a generation request.
enum OptionRange {
    /// `value` if it lies in `range`, else a one-line error naming the option and the range.
    static func check<T: Comparable>(_ value: T, in range: ClosedRange<T>, _ option: String, _ what: String = "") throws -> T {
        guard range.contains(value) else {
            throw CLIError("\(option) must be in \(range.lowerBound)…\(range.upperBound)\(what.isEmpty ? "" : " (\(what))"), got \(value)")
        }
        return value
    }
}

import Foundation

/// Reading a small text file given on the command line without reading an unbounded one.
enum BoundedFile {
    static func text(_ path: String, maxBytes: Int, option: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError("cannot read \(option) \(CLIError.echo(path)): no such file, or not readable")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxBytes + 1)) ?? Data()
        guard data.count <= maxBytes else {
            throw CLIError("\(option) \(CLIError.echo(path)) is over \(maxBytes) bytes; split it into smaller jobs")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIError("\(option) \(CLIError.echo(path)) is not UTF-8 text")
        }
        return text
    }
}
