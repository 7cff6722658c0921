import ArgumentParser

@main
struct Atelier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atelier",
        abstract: "Stable Diffusion 2 on CPUs: render locally or across a farm of workers.",
        version: atelierVersion,
        subcommands: [RenderCommand.self, UpscaleCommand.self, DepthCommand.self,
                      CoordinatorCommand.self, WorkerCommand.self,
                      SubmitCommand.self, SubmitUpscaleCommand.self, StatusCommand.self, WaitCommand.self,
                      CancelCommand.self, WorkersCommand.self,
                      InspectCommand.self, BenchCommand.self])

    static func main() {
        BLASCoreSelection.reexecIfBeneficial()
        Self.main(nil)
    }
}
