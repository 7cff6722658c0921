import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit, and how many connections a server may hold below it.
///
/// Every TCP connection is a file descriptor. systemd's default soft limit is 1024, so 1,100
/// idle connections once locked every worker and client out of a coordinator, with nothing
/// logged (accept fails with EMFILE inside nng). A server raises its soft limit to the hard one
/// at start (`raiseSoftLimitToHard`), logs the figure, and caps connections below it
/// (`connectionCap`), keeping a reserve for SQLite, result files and nng's own descriptors.
public enum FileDescriptorLimit {
    /// (soft, hard) RLIMIT_NOFILE now; nil if unknown.
    public static func current() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (unlimited hard limits to the kernel's
    /// `nr_open`); returns (soft, hard) afterwards.
    @discardableResult
    public static func raiseSoftLimitToHard() -> (soft: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var wanted = limit
            if limit.rlim_max == rlim_t.max {
                let nrOpen = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8))
                    .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1 << 20
                wanted.rlim_cur = rlim_t(nrOpen)
            } else {
                wanted.rlim_cur = limit.rlim_max
            }
            _ = setrlimit(resource, &wanted)
        }
        return current()
    }

    /// Connections to admit with `softLimit` descriptors: all but a reserve of min(256, half).
    public static func connectionCap(softLimit: Int) -> Int {
        let reserve = min(256, softLimit / 2)
        return max(softLimit - reserve, 1)
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    private static func clamp(_ value: rlim_t) -> Int {
        value == rlim_t.max || value > rlim_t(Int.max) ? Int.max : Int(value)
    }
}
