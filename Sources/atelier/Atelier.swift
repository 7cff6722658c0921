import ArgumentParser
import Foundation

@main
struct Atelier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atelier",
        abstract: "Stable Diffusion 2 on CPUs: render locally or across a farm of workers.",
        version: atelierVersion,
        subcommands: [RenderCommand.self, UpscaleCommand.self, DepthCommand.self,
                      CoordinatorCommand.self, WorkerCommand.self,
                      SubmitCommand.self, SubmitUpscaleCommand.self, StatusCommand.self, WaitCommand.self,
                      CancelCommand.self, WorkersCommand.self, DrainCommand.self, TokenCommand.self,
                      InspectCommand.self, BenchCommand.self, ContactSheetCommand.self])

    static func main() {
        BLASCoreSelection.reexecIfBeneficial()
        var command: ParsableCommand
        do {
            command = try parseAsRoot(nil)
        } catch {
            exit(withError: error)  // usage problems (unknown option, --help): ArgumentParser's text
        }
        do {
            try command.run()
        } catch {
            exit(withRunError: error)
        }
    }

    /// An error from running a command: one line, "Error: …", no usage footer (the arguments
    /// parsed; what failed is a value, a file or the farm, and the message says what to do).
    static func exit(withRunError error: Error) -> Never {
        let code = exitCode(for: error)
        if code == .success { exit(withError: error) }  // CleanExit
        let text = message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
        Foundation.exit(error is ValidationError ? ExitCode.validationFailure.rawValue : EXIT_FAILURE)
    }
}
