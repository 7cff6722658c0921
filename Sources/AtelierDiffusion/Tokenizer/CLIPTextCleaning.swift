/// How prompt text is cleaned before CLIP's pre-tokenisation. The two Hugging Face generations
/// differ, and the difference changes token ids for HTML entities, curly quotes, ligatures,
/// full-width text and mojibake.
public enum CLIPTextCleaning: Sendable, Equatable {
    /// transformers ≥ 5 `CLIPTokenizer` (the Rust `tokenizers` backend), which is what diffusers
    /// runs in the pinned reference environment (transformers 5.23): NFC, whitespace runs → one
    /// space, lowercase (per code point, no final-sigma rule). **No ftfy**, even when ftfy is
    /// installed: `&amp;`, `“quotes”`, `ﬁ` and `Ｆｕｌｌ` are tokenized as typed. The default.
    ///
    /// Reproduces the Unicode versions of tokenizers 0.23's tables too: NFC as of Unicode 9.0,
    /// regex letter/number classes as of 16.0, lowercasing as of 17.0 (checked on every code point).
    case transformers

    /// transformers 4.x slow `CLIPTokenizer` with ftfy installed (older diffusers setups, and the
    /// cleaning SD2's OpenCLIP training used, minus its `html.unescape`):
    /// `whitespace_clean(ftfy.fix_text(text)).lower()` on each piece between special tokens.
    case ftfy

    /// The Unicode version of the reference's pre-tokenisation regex classes (`\p{L}`, `\p{N}`).
    var regexUnicodeVersion: UnicodeScalarText.Version {
        switch self {
        case .transformers: return .tokenizersRegex
        case .ftfy: return .pythonRegexModule
        }
    }

    /// Cleans one piece of prompt text (no special tokens inside) into the scalars the
    /// pre-tokeniser scans.
    func clean(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .transformers:
            // The tokenizers pipeline also replaces `\s+` by " ", but the pre-tokeniser drops
            // whitespace anyway and no special token contains any, so that step is skipped.
            return UnicodeScalarText.lowercasedPerScalar(
                UnicodeScalarText.nfc(text, version: .tokenizersNormalization), version: .tokenizersLowercase)
        case .ftfy:
            // `whitespace_clean` (regex `\s+` → " ", strip) is likewise subsumed by the
            // pre-tokeniser: both use the White_Space property, and ftfy has already removed
            // U+001C…U+001F, the only characters Python's `strip()` treats differently.
            return UnicodeScalarText.pythonLowercased(FtfyFixText.fixText(text), version: .python311)
        }
    }
}
