import Foundation

/// Why a CLIP tokenizer could not be loaded. Every message names the file and says what to do.
public enum TokenizerError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// The folder does not exist or is not a directory.
    case folderNotFound(path: String)
    /// Neither `vocab.json` + `merges.txt` nor `tokenizer.json` is present.
    case missingFiles(folder: String, missing: [String])
    /// A file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// A JSON file is not valid JSON or lacks a required field.
    case malformedJSON(path: String, detail: String)
    /// A line of `merges.txt` (or an entry of `model.merges`) is not two symbols.
    case malformedMerges(path: String, line: Int, detail: String)
    /// Vocabulary and merges do not fit together, or the vocabulary is not CLIP's byte-level BPE.
    case inconsistentVocabulary(source: String, detail: String)
    /// A special token (BOS, EOS or pad) is not in the vocabulary.
    case missingSpecialToken(role: String, token: String, source: String)
    /// `tokenizer.json` describes a model this tokenizer does not implement.
    case unsupportedModel(path: String, detail: String)
    /// The requested sequence length cannot hold BOS and EOS.
    case invalidMaxLength(Int)
    /// A model folder's tokenizer (its own, or the bundled CLIP vocabulary used when `tokenizer/`
    /// is missing) produces ids its text encoder's embedding table does not have.
    case vocabularyMismatch(modelFolder: String, tokenizerFolderPresent: Bool, tokenizerVocabulary: Int, textEncoderVocabulary: Int)

    public var description: String {
        switch self {
        case .folderNotFound(let path):
            return "Tokenizer folder not found at \(path). Pass the `tokenizer/` folder of a diffusers model "
                + "(or the model folder that contains it), or use the bundled CLIP vocabulary for single-file checkpoints."
        case .missingFiles(let folder, let missing):
            return "Tokenizer folder \(folder) is incomplete: missing \(missing.joined(separator: ", ")). "
                + "A diffusers `tokenizer/` folder needs vocab.json and merges.txt (plus special_tokens_map.json "
                + "and tokenizer_config.json), or a transformers-5 tokenizer.json. Re-download the folder, or use "
                + "the bundled CLIP vocabulary."
        case .unreadableFile(let path, let reason):
            return "Cannot read tokenizer file \(path): \(reason). Check that it exists and is readable."
        case .malformedJSON(let path, let detail):
            return "Tokenizer file \(path) is not valid: \(detail). The download may be truncated or a Git LFS "
                + "pointer; re-download it."
        case .malformedMerges(let path, let line, let detail):
            return "Merges file \(path) is corrupt at entry \(line): \(detail). Each entry must be two "
                + "space-separated symbols; re-download merges.txt."
        case .inconsistentVocabulary(let source, let detail):
            return "Tokenizer vocabulary in \(source) is inconsistent: \(detail)."
        case .missingSpecialToken(let role, let token, let source):
            return "The \(role) token \(token.debugDescription) named by \(source) is not in the vocabulary. "
                + "Fix special_tokens_map.json / tokenizer_config.json (SD2 uses <|startoftext|>, <|endoftext|> "
                + "and pad \"!\")."
        case .unsupportedModel(let path, let detail):
            return "\(path) describes an unsupported tokenizer: \(detail). Only CLIP byte-level BPE "
                + "(end_of_word_suffix \"</w>\") is supported."
        case .vocabularyMismatch(let folder, let present, let tokens, let embeddings):
            if !present {
                return "\(folder) has no tokenizer/ folder, and the bundled CLIP vocabulary (\(tokens) tokens) does not fit "
                    + "its text encoder (\(embeddings) token embeddings): copy the model's tokenizer/ folder "
                    + "(vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json) into it."
            }
            return "\(folder)/tokenizer has \(tokens) tokens but the text encoder only \(embeddings) token embeddings: "
                + "the tokenizer/ folder is incomplete or from another model; re-download it with the model."
        case .invalidMaxLength(let length):
            return "Invalid tokenizer max length \(length): it must be at least 2 (BOS + EOS); SD2 uses 77."
        }
    }

    public var errorDescription: String? { description }
}
