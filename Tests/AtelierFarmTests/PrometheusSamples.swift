import Foundation

/// The samples of a Prometheus text exposition, read the simple way (one `name{labels} value` per
/// line), for checking values; the format itself is checked by promtool.
struct PrometheusSamples {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]

    init(_ text: String) {
        var found = [Sample]()
        for raw in text.split(separator: "\n") where !raw.hasPrefix("#") {
            let line = String(raw)
            var name = "", labels = [String: String](), rest = ""
            if let brace = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                name = String(line[..<brace])
                let inner = line[line.index(after: brace)..<close]
                // label="value" pairs; values here never contain `",` (model and state names).
                for pair in inner.components(separatedBy: "\",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
                rest = String(line[line.index(after: close)...])
            } else {
                let parts = line.split(separator: " ", maxSplits: 1)
                guard parts.count == 2 else { continue }
                name = String(parts[0])
                rest = String(parts[1])
            }
            guard let value = Double(rest.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") else { continue }
            found.append(Sample(name: name, labels: labels, value: value))
        }
        samples = found
    }

    /// The value of `name` with exactly these labels among its own (others may be present), if any.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
    }
}
