import ArgumentParser
import Foundation
import AtelierDiffusion

/// `atelier contact-sheet`: several PNGs in one grid, each captioned with its prompt.
struct ContactSheetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contact-sheet",
        abstract: "Lay out PNGs in one grid with their prompts lettered underneath.",
        discussion: """
            The caption of each image is the prompt stored in its parameters (every PNG Atelier \
            writes carries one), else its file name. Every image is enlarged by the largest integer \
            factor (nearest neighbour, at most 8) that fits a cell as large as the largest image and \
            at least 128 px, so 64 px renders sit next to a 256 px upscale at the same size.

            Example:
              atelier contact-sheet demo-out/batch/*.png --output demo-out/contact-sheet.png
            """)

    static let maxImages = 256

    @Argument(help: "PNG files, in grid order (row by row).")
    var images: [String] = []

    @Option(parsing: .unconditional, help: "Images per row (default: up to 5).")
    var columns: Int?

    @Option(parsing: .unconditional, help: "One integer enlargement for all images, 1…8 (default: per image, to fill the cell).")
    var scale: Int?

    @Option(help: "Output PNG.")
    var output: String = "contact-sheet.png"

    func run() throws {
        guard !images.isEmpty else { throw CLIError("contact-sheet needs at least one PNG") }
        guard images.count <= Self.maxImages else {
            throw CLIError("contact-sheet takes at most \(Self.maxImages) images, got \(images.count); make several sheets")
        }
        let columns = try columns.map { try OptionRange.check($0, in: 1...64, "--columns") } ?? min(5, images.count)
        var entries: [ContactSheet.Entry] = []
        for path in images {
            let png = try PNGCodec.read(path: path, limits: .inputImage)
            let caption = png.parametersText.flatMap { try? GenerationParameters.parse($0).prompt }
                ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            entries.append(.init(image: png.rgb(), caption: caption))
        }
        let scale = try scale.map { try OptionRange.check($0, in: 1...ContactSheet.maxScale, "--scale") }
        try CommandInputs.checkWritable([output])
        let sheet = try ContactSheet(entries: entries, columns: columns, scale: scale).render()
        try PNGCodec.write(sheet, to: URL(fileURLWithPath: output))
        print(output)
    }
}
