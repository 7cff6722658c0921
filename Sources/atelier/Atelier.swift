import ArgumentParser

@main
struct Atelier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atelier",
        abstract: "Stable Diffusion 2 on CPUs: render locally or across a farm of workers.",
        subcommands: [RenderCommand.self, UpscaleCommand.self, InspectCommand.self, BenchCommand.self])
}
