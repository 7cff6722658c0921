import Foundation

extension BPETokenizer {
    /// The tokenizer of a diffusers model folder: its `tokenizer/`, else the bundled CLIP
    /// vocabulary (what SD2 ships). Either must fit the text encoder: a folder without
    /// `tokenizer/` whose encoder has a smaller table used to fail at the first prompt with
    /// "token id 49406 is outside the text encoder's vocabulary", which says nothing about the
    /// missing folder; now loading says so and what to copy.
    public static func forModel(folder: URL, textEncoderVocabulary: Int) throws -> BPETokenizer {
        let tokenizerDir = folder.appendingPathComponent("tokenizer")
        let present = FileManager.default.fileExists(atPath: tokenizerDir.path)
        let tokenizer = present ? try BPETokenizer(folder: tokenizerDir) : try BPETokenizer.bundled()
        guard tokenizer.vocabularySize <= textEncoderVocabulary else {
            throw TokenizerError.vocabularyMismatch(modelFolder: folder.path, tokenizerFolderPresent: present,
                                                    tokenizerVocabulary: tokenizer.vocabularySize,
                                                    textEncoderVocabulary: textEncoderVocabulary)
        }
        return tokenizer
    }
}
