import Foundation

/// The targets of Package.swift and what each depends on, read from the manifest's text, plus the
/// modules each target's sources import. SwiftPM cannot be asked (`swift package describe`) from
/// inside `swift test`, which holds the build folder's lock, so the manifest is parsed: every
/// `.target`, `.executableTarget`, `.testTarget` and `.systemLibrary` call, its `name:` and the
/// elements of its `dependencies: [...]` (a string is a target, `.product(name: "X", …)` a
/// product of another package).
struct PackageGraph {
    struct Target {
        let name: String
        let kind: String
        var targets: [String] = []
        var products: [String] = []
    }

    var targets: [String: Target]

    init(manifest: String) throws {
        var targets = [String: Target]()
        let chars = Array(manifest)
        // Every call first, so that one inside another (`.target(name: "X", condition: …)`, a
        // conditional dependency of some other target) is not read as the declaration of X.
        var calls = [(kind: String, start: Int, open: Int, close: Int)]()
        for kind in ["target", "executableTarget", "testTarget", "systemLibrary"] {
            let opener = Array(".\(kind)(")
            var i = 0
            while let start = PackageGraph.find(opener, in: chars, from: i) {
                let open = start + opener.count - 1
                guard let close = PackageGraph.matching(chars, open: open) else {
                    throw GraphError("unbalanced parentheses after .\(kind)( at offset \(start)")
                }
                calls.append((kind, start, open, close))
                i = close
            }
        }
        for (kind, start, open, close) in calls
        where !calls.contains(where: { $0.open < start && close < $0.close }) {
            let call = String(chars[(open + 1)..<close])
            guard let name = PackageGraph.firstString(after: "name:", in: call) else {
                throw GraphError(".\(kind)( at offset \(start) has no name")
            }
            var target = Target(name: name, kind: kind)
            if let deps = PackageGraph.bracket(after: "dependencies:", in: call) {
                for element in PackageGraph.topLevelElements(deps) {
                    let e = element.trimmingCharacters(in: .whitespacesAndNewlines)
                    if e.hasPrefix("\""), let s = PackageGraph.firstString(after: "", in: e) {
                        target.targets.append(s)
                    } else if e.hasPrefix(".product("), let s = PackageGraph.firstString(after: "name:", in: e) {
                        target.products.append(s)
                    } else if e.hasPrefix(".target("), let s = PackageGraph.firstString(after: "name:", in: e) {
                        target.targets.append(s)
                    } else if !e.isEmpty {
                        throw GraphError("\(name): cannot read the dependency \(e)")
                    }
                }
            }
            targets[name] = target
        }
        self.targets = targets
    }

    /// Every target `name` depends on, directly or not (not including itself).
    func closure(of name: String) -> Set<String> {
        var seen = Set<String>(), stack = targets[name]?.targets ?? []
        while let next = stack.popLast() {
            guard seen.insert(next).inserted else { continue }
            stack.append(contentsOf: targets[next]?.targets ?? [])
        }
        return seen
    }

    /// The modules imported by the Swift files under `folder` (`import X`, `@testable import X`,
    /// `@_exported import X`, `import struct X.Y`), with the file that imports each.
    static func imports(under folder: URL) throws -> [(module: String, file: String)] {
        var found = [(String, String)]()
        guard let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else { return [] }
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                var words = line.split(separator: " ").map(String.init)
                while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
                guard words.count >= 2, words[0] == "import" else { continue }
                let kinds: Set<String> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
                let path = kinds.contains(words[1]) && words.count >= 3 ? words[2] : words[1]
                found.append((String(path.split(separator: ".")[0]), url.lastPathComponent))
            }
        }
        return found
    }

    struct GraphError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    // MARK: Scanning (strings and line comments are skipped when matching brackets)

    private static func find(_ needle: [Character], in chars: [Character], from: Int) -> Int? {
        guard needle.count <= chars.count else { return nil }
        var i = from
        while i + needle.count <= chars.count {
            if chars[i] == needle[0] && Array(chars[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// The index of the bracket closing the one at `open`.
    private static func matching(_ chars: [Character], open: Int) -> Int? {
        var depth = 0, i = open, inString = false
        while i < chars.count {
            let c = chars[i]
            if inString {
                if c == "\\" { i += 1 } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "/" && i + 1 < chars.count && chars[i + 1] == "/" {
                while i < chars.count && chars[i] != "\n" { i += 1 }
            } else if "([{".contains(c) {
                depth += 1
            } else if ")]}".contains(c) {
                depth -= 1
                if depth == 0 { return i }
            }
            i += 1
        }
        return nil
    }

    private static func firstString(after label: String, in text: String) -> String? {
        let rest: Substring
        if label.isEmpty { rest = Substring(text) } else {
            guard let r = text.range(of: label) else { return nil }
            rest = text[r.upperBound...]
        }
        guard let q1 = rest.firstIndex(of: "\"") else { return nil }
        let after = rest[rest.index(after: q1)...]
        guard let q2 = after.firstIndex(of: "\"") else { return nil }
        return String(after[..<q2])
    }

    /// The inside of the `[...]` following `label` at the call's top level.
    private static func bracket(after label: String, in call: String) -> String? {
        guard let r = call.range(of: label) else { return nil }
        let chars = Array(call[r.upperBound...])
        guard let open = chars.firstIndex(of: "["), let close = matching(chars, open: open) else { return nil }
        return String(chars[(open + 1)..<close])
    }

    /// Elements of a list's inside, split on commas outside brackets and strings.
    private static func topLevelElements(_ list: String) -> [String] {
        var out = [String](), current = "", depth = 0, inString = false
        var chars = Array(list)[...]
        while let c = chars.popFirst() {
            if inString {
                current.append(c)
                if c == "\\", let n = chars.popFirst() { current.append(n) } else if c == "\"" { inString = false }
                continue
            }
            if c == "/" && chars.first == "/" {
                while let n = chars.first, n != "\n" { chars.removeFirst() }
                continue
            }
            if c == "\"" { inString = true }
            if "([{".contains(c) { depth += 1 }
            if ")]}".contains(c) { depth -= 1 }
            if c == "," && depth == 0 { out.append(current); current = "" } else { current.append(c) }
        }
        out.append(current)
        return out.filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
    }
}
