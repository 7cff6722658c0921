import AtelierFarm
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Idle connections must not exhaust the coordinator's file descriptors: a real coordinator
/// process with a low open-file limit, a crowd of idle peers over real TCP sockets, and a real
/// client that must still be served.
final class CoordinatorConnectionCapTests: XCTestCase {
    private var cluster: FarmCluster?
    private var sockets: [Int32] = []

    override func tearDown() {
        for fd in sockets { close(fd) }
        sockets = []
        shutDown(&cluster)
        super.tearDown()
    }

    /// A TCP connection that completes the SP handshake as a REQ peer and then sends nothing.
    private func idlePeer(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FarmTestError("socket(): errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw FarmTestError("connect(): errno \(errno)") }
        let hello: [UInt8] = [0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00]  // SP header, REQ
        _ = hello.withUnsafeBytes { send(fd, $0.baseAddress, 8, Int32(MSG_NOSIGNAL)) }
        return fd
    }

    /// The lock-out, scaled down: the coordinator runs with 128 descriptors (as a
    /// systemd unit runs with 1024) and 200 idle peers connect. It caps connections below the
    /// limit, logs the refusals, reaps the idle ones, and a real client is still served.
    func testIdleConnectionsCannotLockOutARealClient() throws {
        let farm = try FarmCluster(testName: name)
        cluster = farm
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        let command = "ulimit -n 128 && exec '\(farm.binary.path)' coordinator --listen \(farm.address) "
            + "--data '\(farm.dataDir.path)' --idle-connection-seconds 1"
        shell.arguments = ["-c", command]
        let err = farm.root.appendingPathComponent("logs/capped-coordinator.err")
        FileManager.default.createFile(atPath: err.path, contents: nil)
        shell.standardError = try FileHandle(forWritingTo: err)
        shell.standardOutput = FileHandle.nullDevice
        try shell.run()
        defer { if shell.isRunning { kill(shell.processIdentifier, SIGKILL) }; shell.waitUntilExit() }
        let stderr = { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }
        _ = try FarmProcessSupport.poll("the coordinator to listen", timeout: 20, interval: 0.1) {
            stderr().contains("listening on") ? true : nil
        }
        XCTAssertTrue(stderr().contains("open-file limit 128"), stderr())

        for _ in 0..<200 { sockets.append(try idlePeer(port: farm.port)) }
        Thread.sleep(forTimeInterval: 0.5)

        let client = try farm.client()
        let response = try FarmProcessSupport.poll("a real client to be served", timeout: 15, interval: 0.2) {
            () -> Atelier_V1_Response? in try? farm.call(client, .listWorkers(.init()), timeout: .seconds(2))
        }
        XCTAssertFalse(response.hasError, response.error.message)
        XCTAssertTrue(shell.isRunning, "the coordinator survived\n\(stderr())")
        XCTAssertTrue(stderr().contains("refused"), "the refusals are logged\n\(stderr())")
    }
}
