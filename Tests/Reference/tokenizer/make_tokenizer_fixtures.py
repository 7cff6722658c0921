#!/usr/bin/env python3
"""Parity corpus for the Swift CLIP tokenizer (AtelierDiffusion `BPETokenizer`).

Writes Tests/Reference/tokenizer/tokenizer_corpus.json: for every prompt of a deterministic corpus

  - `ids`:      transformers 5.23.0 `CLIPTokenizer` (what diffusers runs in the pinned reference
                environment) with `padding="max_length", max_length=77, truncation=True`;
  - `ids_ftfy`: transformers 4.57.3's slow (pure Python) `CLIPTokenizer` with ftfy 6.3.1 installed,
                same arguments: the `whitespace_clean(ftfy.fix_text(text)).lower()` flavour
                (omitted when equal to `ids`);
  - `ftfy`:     `ftfy.fix_text(prompt)` itself, to test the Swift ftfy port on its own (omitted when
                equal to the prompt).

and `ftfy_cases`, 400 [input, ftfy.fix_text(input)] pairs of deliberately made mojibake (UTF-8
decoded as Windows-125x, Latin-1, MacRoman, CP437, ISO-8859-2; doubled, partial, NBSP lost,
bytes lost to '?'/U+FFFD, mixed with clean text and HTML) that exercise ftfy's encoding repair.

plus a few "folder variants" (SD1-style configs, plain-string special tokens, a transformers-5
`tokenizer.json`-only save) whose config files are stored in the fixture so that the Swift test can
rebuild the same folders.

Usage (from the repository root):

    /work/refvenv/bin/pip install --no-deps open-clip-torch==3.3.0
    # transformers 4.x for the ftfy flavour, in its own venv layered over the reference one:
    /work/refvenv/bin/python -m venv /tmp/tf4venv
    /tmp/tf4venv/bin/pip install --no-deps transformers==4.57.3 tokenizers==0.22.1 huggingface_hub==0.36.0
    echo /work/refvenv/lib/python3.11/site-packages > /tmp/tf4venv/lib/python3.11/site-packages/zz_refvenv.pth
    /work/refvenv/bin/python Tests/Reference/tokenizer/make_tokenizer_fixtures.py [--legacy-python /tmp/tf4venv/bin/python]

There is no network access to the Hugging Face hub here, so the SD2 `tokenizer/` folder is rebuilt
from open_clip's `bpe_simple_vocab_16e6.txt.gz` exactly as the SD2 repositories lay it out
(vocab.json, merges.txt with its `#version: 0.2` header, special_tokens_map.json with pad "!",
tokenizer_config.json with pad "<|endoftext|>" and model_max_length 77), and checked against
known ids.
"""
import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUT = os.path.join(ROOT, "Tests/Reference/tokenizer/tokenizer_corpus.json")
MAX_LENGTH = 77

# ----------------------------------------------------------------------------- tokenizer folder


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def added(content, normalized):
    return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}


SD2_SPECIAL_TOKENS_MAP = {
    "bos_token": added("<|startoftext|>", True),
    "eos_token": added("<|endoftext|>", True),
    "pad_token": "!",
    "unk_token": added("<|endoftext|>", True),
}
SD2_TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": dict(added("<|startoftext|>", True), __type="AddedToken"),
    "do_lower_case": True,
    "eos_token": dict(added("<|endoftext|>", True), __type="AddedToken"),
    "errors": "replace",
    "model_max_length": 77,
    "name_or_path": "stabilityai/stable-diffusion-2",
    "pad_token": "<|endoftext|>",
    "special_tokens_map_file": "./special_tokens_map.json",
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": dict(added("<|endoftext|>", True), __type="AddedToken"),
}


def open_clip_merges():
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        sys.exit("open_clip missing: /work/refvenv/bin/pip install --no-deps open-clip-torch==3.3.0")
    path = os.path.join(list(spec.submodule_search_locations)[0], "bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    return lines[1 : 49152 - 256 - 2 + 1]


def write_folder(folder, merges, special_map, config):
    os.makedirs(folder, exist_ok=True)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {v: i for i, v in enumerate(vocab)}
    assert len(encoder) == 49408
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(m + "\n")
    if special_map is not None:
        with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
            json.dump(special_map, f, indent=2)
    if config is not None:
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)


# Variants whose special-token handling differs; the Swift test rebuilds them from these configs.
def plain(d):
    return {k: (v["content"] if isinstance(v, dict) and "content" in v else v) for k, v in d.items()}


FOLDER_VARIANTS = {
    # The SD2 repositories' layout itself.
    "sd2": (SD2_SPECIAL_TOKENS_MAP, SD2_TOKENIZER_CONFIG),
    # SD1.x-style: no special_tokens_map.json, so pad = "<|endoftext|>" (49407) and, being
    # registered last as a plain string, EOS becomes a non-normalised token.
    "sd1_no_special_tokens_map": (None, SD2_TOKENIZER_CONFIG),
    # Every special token as a plain string: all non-normalised (typed "<|ENDOFTEXT|>" is BPE'd).
    "plain_strings": (plain(SD2_SPECIAL_TOKENS_MAP), plain(SD2_TOKENIZER_CONFIG)),
}
VARIANT_PROMPTS = [
    "", "a photo of a cat", "hello! world!!", "<|ENDOFTEXT|> hi! <|endoftext|>", "<|startoftext|>x<|StartOfText|>",
    "!!!", "wow!!! 1,000 cats", "&amp; “quoted”", ".<|endoftext|>", "a " * 80, "Ｆｕｌｌ ﬁne Ã©tÃ© ΣΑΣ",
    "<|endoftext|><|endoftext|>!", "x<|ENDOFTEXT|>!y",
]

# ----------------------------------------------------------------------------- corpus

SD_PROMPTS = [
    "a photo of a cat",
    "a photograph of an astronaut riding a horse",
    "a professional photograph of an astronaut riding a horse on mars, 8k, highly detailed",
    "portrait of a young woman, soft lighting, bokeh, 85mm, f/1.8, kodak portra 400",
    "a painting of a fox in the style of claude monet",
    "cyberpunk city at night, neon lights, rain, reflections, by syd mead and greg rutkowski, trending on artstation",
    "(masterpiece:1.2), (best quality:1.1), 1girl, solo, long hair, looking at viewer, smile",
    "((masterpiece)), [[blurry]], (ugly:1.3), {detailed}, <lora:add_detail:0.8>",
    "a cozy cabin in the woods, winter, snow, warm light from the windows, matte painting, unreal engine 5",
    "low poly isometric render of a tiny island, blender, octane render, volumetric lighting",
    "studio ghibli style landscape, rolling hills, cumulus clouds, vibrant colors",
    "an oil painting of a lighthouse during a storm, dramatic, chiaroscuro, by rembrandt",
    "macro photo of a dew drop on a leaf, shallow depth of field, 100mm macro lens",
    "a bowl of ramen, food photography, steam, top-down view, f/2.8",
    "a corgi wearing sunglasses, digital art, pixar style, 3d render",
    "blurry, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username",
    "deformed, disfigured, mutated, extra limbs, poorly drawn face, out of frame",
    "a steampunk airship above victorian london, sepia, highly intricate, art nouveau border",
    "concept art of a dragon's lair, gold coins, glowing eyes, by frank frazetta",
    "a cat's toy, the dog's bone, they're here, we've won, I'm fine, we'll see, he'd go, don't stop",
    "It'S A Cat'S Life, THEY'RE HERE, I'M OK, WE'LL SEE, HE'D GO, DON'T",
    "rock 'n' roll, 'quoted', ''double single'', '' , ' s",
    "hyperrealistic, 4k uhd, dslr, film grain, fujifilm xt3",
    "a red cube on top of a blue sphere, next to a green pyramid",
    "black and white photo of new york city, 1950s, leica m3, tri-x 400",
    "a vase of sunflowers by vincent van gogh, impasto, thick brush strokes",
    "an anime girl with pink hair, cherry blossoms, makoto shinkai, detailed sky",
    "the great wave off kanagawa but with cats, ukiyo-e, woodblock print",
    "a knight in shining armor, fantasy, d&d, artgerm, alphonse mucha",
    "vaporwave aesthetic, palm trees, sunset, grid, 80s retro",
    "a tiny robot watering a plant, cute, kawaii, pastel colors, isometric",
    "a whale swimming through clouds, surreal, dreamlike, salvador dali",
    "interior design, scandinavian living room, minimalist, natural light, plants",
    "a medieval market, busy street, merchants, 15th century, detailed illustration",
    "underwater coral reef, tropical fish, sun rays, national geographic",
    "photo of a golden retriever puppy playing in autumn leaves",
    "a futuristic sports car, concept design, studio lighting, reflective floor",
    "an ancient temple in the jungle, overgrown, indiana jones, mist",
    "a witch brewing potions, candles, bookshelves, cozy, warm tones",
    "astronaut, space, nebula, stars, galaxy, cosmic, 8k wallpaper",
    "mountain lake at sunrise, reflection, alps, landscape photography, polarizer",
    "a samurai standing in the rain, cinematic, anamorphic lens flare, 2.39:1",
    "a teddy bear on a skateboard in times square",
    "ink drawing of a raven, minimalist, black ink on white paper",
    "a vintage poster for a trip to mars, retro-futurism, 1960s travel poster",
    "masterpiece, best quality, ultra-detailed, illustration, an extremely delicate and beautiful girl",
    "(((best quality))), ((ultra-detailed)), (illustration:1.4), (floating hair:1.1)",
    "[cat|dog] hybrid, [from:to:0.5], AND a forest, BREAK a river",
    "score_9, score_8_up, score_7_up, rating_safe, source_anime",
    "lighthouse::2 storm::1 --ar 16:9 --v 5 --no people",
    "a_b_c snake_case_words and kebab-case-words and CamelCaseWords",
    "email me at artist@example.com or visit https://example.com/gallery?id=42&sort=new#top",
    "path/to/file.png, C:\\Users\\name\\image.jpg, ~/.config",
    "price: $19.99, €20, £15, ¥2000, 50% off, #1 best seller, 3/4 view",
    "temperature 25°C, 77°F, 5'11\", 6′2″, 90° angle",
]

UNICODE_PROMPTS = [
    "富士山と桜、浮世絵風",
    "一只可爱的猫，坐在窗台上，阳光，水彩画",
    "東京の夜景、ネオン、雨",
    "한국의 전통 한옥 마을, 가을 단풍",
    "Красивый пейзаж, горы, озеро, закат",
    "ΟΔΟΣ ΣΟΦΙΑΣ, Ελληνικό χωριό, θάλασσα",
    "σοφός ΣΟΦΟΣ Σ ΑΣ. ΑΣ-Β",
    "صورة لقطة جميلة في الحديقة",
    "שלום עולם, תמונה של חתול",
    "एक सुंदर बिल्ली की तस्वीर, हिन्दी",
    "ภาพแมวน่ารักนั่งอยู่บนโต๊ะ",
    "Ảnh một con mèo dễ thương, tiếng Việt",
    "ქართული ენა, მთები",
    "Հայերեն, Արարատ լեռ",
    "தமிழ் கவிதை, கோயில்",
    "Türkçe İstanbul ışık, ıIİi",
    "straße, STRASSE, ẞ, groß",
    "café crème brûlée, naïve façade, señor, smörgåsbord, Øresund, Łódź",
    "cafe\u0301 cre\u0300me bru\u0302le\u0301e (decomposed accents)",
    "A\u030a \u212b \u2126 \u00c5 (angstrom, ohm, composed)",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab (hangul jamo)",
    "e\u0301\u0327 q\u0307\u0323 (combining order)",
    "emoji 😀😃😄 🐱🐶 🎨🖌️ 🌅",
    "family 👨‍👩‍👧‍👦 and 👩🏽‍🚀 astronaut, ❤️‍🔥, 🏳️‍🌈",
    "flags 🇯🇵 🇺🇸 🇫🇷 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "skin tones 👍🏻👍🏼👍🏽👍🏾👍🏿",
    "keycaps 1️⃣ 2️⃣ #️⃣ and ©️ ®️ ™️",
    "math 𝐀𝐁𝐂 𝕏 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 ∑∫√∞ ≈ ≠ ≤",
    "superscripts x² y³ ½ ¾ ⅓ Ⅻ ⅻ ① ⑳ ٣ ๓ ३",
    "digits in scripts ١٢٣ ۱۲۳ १२३ ๑๒๓ 一二三 ０１２",
    "zero width\u200bspace, joiner\u200d, non-joiner\u200c, word\u2060joiner",
    "bidi \u202eevil\u202c text \u200f\u200e marks",
    "soft\u00adhyphen, non\u00a0breaking, thin\u2009space, ideographic\u3000space",
    "mongolian\u180evowel separator, ogham\u1680space",
    "private use \ue000\uf8ff, replacement \ufffd, noncharacter \ufdd0",
    "astral 𠀀𠀁 𐍈 𓀀 𝄞 🀄",
    "ǅungla ǈjubav ǋjegoš Ǳ ǲ ǳ",
    "ﬁne ﬂower ﬀ ﬃ ﬄ ﬅ ﬆ Ĳssel ĳs ŉ",
    "Ｆｕｌｌｗｉｄｔｈ　ＴＥＸＴ！ １２３",
    "ﾊﾝｶｸ ｶﾀｶﾅ halfwidth katakana ｱｲｳ ﾞﾟ",
    "Ⓐⓑⓒ ⅰⅱⅲ Ⅰ Ⅱ ㈱ ㍻ ℃ ℉ № ™ ℡",
    "İ̇ i̇ Ǆ ǅ ǆ ſ 'ſ it'ſ K Å",
    "\u0345 \u1fb3 \u1fbc \u03b1\u0345",
    "Ꭰꭰ Ᏸ ᏸ (cherokee case)",
]

PUNCTUATION_PROMPTS = [
    "!",
    "!!",
    "! !! !!!",
    "hello! world!!",
    "wow!!! amazing!!!",
    "!a!b!c!",
    "!!!masterpiece!!!",
    "?!?! ?! !? ‽ ⁉ ¡hola!",
    "(masterpiece!:1.2)",
    "a!b",
    "a !b c! d ! e",
    "!\u0301 accent after bang",
    "！ fullwidth bang and ﹗ small bang",
    "...---...",
    ",,,;;;:::",
    "(((((((((())))))))))",
    "[[[[]]]] {{{{}}}} <<<<>>>>",
    "~~~***^^^%%%$$$###@@@",
    "--- ___ === +++ ||| \\\\\\ ///",
    "a...b---c___d",
    "\"double\" 'single' `back` ´acute´",
    "“curly double” ‘curly single’ „low double“ ‚low single‘ «guillemets» ‹single›",
    "it’s the artist’s work, don’t",
    "it's it’s it‘s it`s it´s itʼs",
    "—em dash– en dash ‒ figure ― bar - hyphen ‐ hyphen2",
    "…ellipsis… and ... three dots",
    "•bullet· middle·dot ° degree",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|ENDOFTEXT|>",
    "<|EndOfText|> a <|startOfText|>",
    "a<|endoftext|>b<|startoftext|>c",
    ".<|endoftext|>",
    "x.<|endoftext|>y",
    "<|endoftext|",
    "<| endoftext |>",
    "<|endoftext|>!<|endoftext|>",
    "&lt;|endoftext|&gt;",
    "<lora:detail:1> <hypernet:anime:0.5>",
    "<b>bold</b> &amp; <i>italic</i>",
]

NUMBER_PROMPTS = [
    "1",
    "1024x768",
    "1,000,000 stars",
    "3.14159",
    "1 000 000 and 1.000.000 and 1'000'000",
    "-42, +7, 1e10, 0x1F, 0b1010, 007",
    "2023-12-31 23:59:59",
    "(masterpiece:1.2), (detailed:0.85), (ugly:-1)",
    "v1.5, sd2.1, 768-v-ema.ckpt",
    "phone +1 (555) 123-4567",
    "1st 2nd 3rd 4th 21st 100th",
    "99 red balloons, 101 dalmatians, 1984, 2001: a space odyssey",
    "8k 4k 16k 1080p 720p 60fps",
    "12345678901234567890",
    "३.१४ ٣٫١٤ ３．１４",
]

HTML_PROMPTS = [
    "&amp;",
    "&lt;b&gt;",
    "&#39;",
    "&amp; &lt;b&gt; &#39;",
    "rock &amp; roll, salt &amp pepper",
    "&quot;quoted&quot; &apos;single&apos;",
    "caf&eacute; cr&egrave;me br&ucirc;l&eacute;e",
    "P&EACUTE;REZ, BUNDESSTRA&SZLIG;E, &NTILDE; &nTILDE;",
    "&nbsp;&nbsp;spaces&nbsp;",
    "&hellip; &mdash; &ndash; &trade; &copy; &reg;",
    "&#x27;hex&#X27; &#x1F600; &#128512; &#8364;",
    "&#59; &#x3b; semicolons stay",
    "&#0; &#13; &#128; &#150; &#x80; &#xD800; &#1114112; &#99999999999999999999;",
    "&#12ab; &#xZZ; &#; &#x; &; &amp",
    "&notanentity; &AMP; &Amp; &aMp;",
    "&amp;lt;b&amp;gt; double escaped",
    "&amp;amp;amp; triple",
    "a < b &amp; c",
    "first line &amp;\nsecond < line &amp;\nthird &amp;",
    "&lt;first&gt; line\nsecond &amp; line",
    "&Tab;tab&NewLine;newline",
    "&abcdefghijklmnopqrstuvwxyz; too long",
    "&NotEqualTilde; &fjlig; &ThickSpace;",
    "AT&T, Q&A, R&D, B&W photo",
]

MOJIBAKE_PROMPTS = [
    "Ã©tÃ©",
    "cafÃ©, crÃ¨me brÃ»lÃ©e",
    "The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.",
    "Ã la mode, Ã  la carte",
    "voilÃ le travail",
    "â€œquotedâ€\x9d and â€˜singleâ€™",
    "â€” dash â€“ dash â€¦",
    "ÐŸÑ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
    "æ—¥æœ¬èªž ãƒ†ã‚¹ãƒˆ",
    "ðŸ˜€ ðŸ±",
    "Ã¼ber schÃ¶n grÃ¼n",
    "sÃ³ nÃ£o",
    "Ã¢â‚¬Å“doubleÃ¢â‚¬\x9d",
    "\x80 euro \x93quoted\x94 \x85",
    "\x81\x8d\x8f\x90\x9d undefined c1",
    "Ð¼Ð¾Ñ\x8f",
    "âœ” No problems",
    "&macr;\\_(ã\x83\x84)_/&macr;",
    "Ã¢â‚¬â„¢ and a real Ã",
    "l’Ã©tÃ© est lÃ ",
    "Ã\xa0 la carte",
    "ÂçÂa Â  nbsp",
    "Ã\x83Â©",
    "mixed: cafÃ© and café",
    "ГўВЂВ™ windows-1251",
    "√©t√© macroman",
    "Ã©â€ lossy â€� thing",
    "doesn?t lossy ? mark",
    "ÐÐ°ÑÑ‚Ñ€Ð¾Ð¹ÐºÐ°",
    "Ã±ame Ã‘",
]

WHITESPACE_PROMPTS = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    " \t\n\r\x0b\x0c ",
    "\u3000\u00a0\u2028\u2029\u0085",
    "a\tb\nc",
    "a  b   c    d",
    "  leading and trailing  ",
    "line one\nline two\r\nline three\rline four",
    "tab\tseparated\tvalues",
    "a\x1cb\x1dc\x1ed\x1ff",
    "a\x00b\x01c\x07d\x7fe",
    "\x1b[31mred text\x1b[0m normal",
    "\x1b[1;32;40mbold green\x1b[m",
    "\ufeffBOM at start",
    "x\u2060y\ufff9z\ufffc",
    "\u206a\u206fdeprecated",
]

WORDS = [
    "cat", "dog", "castle", "forest", "portrait", "landscape", "detailed", "cinematic", "lighting",
    "octane", "render", "watercolor", "sketch", "neon", "sunset", "ocean", "mountain", "robot", "dragon",
    "masterpiece", "best", "quality", "ultra", "realistic", "fantasy", "sci-fi", "hdr", "bokeh", "trending",
    "artstation", "unreal", "engine", "greg", "rutkowski", "alphonse", "mucha", "monet", "van", "gogh",
    "café", "naïve", "über", "東京", "猫", "кот", "γάτα", "قطة", "बिल्ली", "고양이", "😀", "🐱", "🎨",
    "it's", "don't", "they're", "&amp;", "“quote”", "ﬁne", "Ｗｉｄｅ", "Ã©tÃ©", "1024", "3.5", "v2",
    "x!", "!!", "<|endoftext|>", "(", ")", "[", "]", "{", "}", ":", "::", "1.2", ",", ".", ";",
]
SEPARATORS = [" ", ", ", " ", " ", ",", " | ", "  ", "\n", "\t", " ", "! ", ". "]
WEIGHTS = ["({w}:{n})", "(({w}))", "[{w}]", "{w}", "{w}", "{w}", "({w})"]


def long_prompts():
    base = ("a highly detailed matte painting of an ancient city on a cliff above the sea, golden hour, "
            "volumetric fog, towering spires, tiny figures walking across stone bridges, by greg rutkowski "
            "and thomas kinkade, trending on artstation, 8k, unreal engine, octane render, cinematic lighting")
    return [
        base,
        base + ", " + base,
        "cat " * 100,
        "cat, " * 50,
        "1234567890" * 10,
        "!" * 100,
        ("word! " * 40).strip(),
        "超" * 120,
        "😀" * 80,
        " ".join(f"token{i}" for i in range(90)),
        "a" * 500,
        ("(masterpiece:1.2), " * 20).strip(),
        "ａ" * 100,
        "&amp; " * 60,
    ]


def seeded_prompts(rng, count):
    out = []
    for _ in range(count):
        n = rng.randint(1, 30)
        parts = []
        for _ in range(n):
            w = rng.choice(WORDS)
            if rng.random() < 0.3:
                w = w.upper() if rng.random() < 0.5 else w.capitalize()
            tmpl = rng.choice(WEIGHTS)
            w = tmpl.format(w=w, n=rng.choice(["1.1", "1.2", "0.8", "1.5", "2"]))
            parts.append(w)
            parts.append(rng.choice(SEPARATORS))
        text = "".join(parts)
        if rng.random() < 0.15:
            text = "  " + text + " \n"
        out.append(text)
    # Character soup: random picks from a pool of interesting code points.
    pool = list("abcXYZ019!?.,;:'\"()[]{}<>|/\\-_=+*&#@$%^~` \t\n") + [
        "é", "e\u0301", "ß", "İ", "Σ", "ς", "ſ", "ﬁ", "Ａ", "１", "！", "\u3000", "\u00a0", "\u200b", "\u200d",
        "😀", "👩", "\U0001F3FD", "🇯", "🇵", "中", "日", "ア", "ｱ", "한", "я", "ä", "Ã", "©", "€", "â", "œ",
        "\x85", "\x93", "\u2028", "“", "”", "’", "…", "—", "¡", "°", "½", "²", "١", "५", "\u0301", "\u0327",
        "&", "&amp;", "&lt;", "&#39;", "&eacute;", "<|endoftext|>", "<|startoftext|>", "'s", "'re", "'ll",
    ]
    for _ in range(count // 2):
        out.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 40))))
    return out


def build_corpus():
    rng = random.Random(20240611)
    corpus = (SD_PROMPTS + UNICODE_PROMPTS + PUNCTUATION_PROMPTS + NUMBER_PROMPTS + HTML_PROMPTS
              + MOJIBAKE_PROMPTS + WHITESPACE_PROMPTS + long_prompts() + seeded_prompts(rng, 260))
    seen, unique = set(), []
    for p in corpus:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


FTFY_SOURCE_TEXTS = [
    "café", "crème brûlée", "naïve façade", "über schön", "São Paulo", "Ærøskøbing", "Łódź", "Dvořák",
    "İstanbul'da ışık", "Привет, мир", "Ελληνικά", "日本語のテキスト", "中文字符", "한국어", "עברית", "العربية",
    "हिन्दी", "ภาษาไทย", "emoji 😀 🐱 👩‍🚀", "“smart quotes” and ‘single’", "em—dash and en–dash", "ellipsis…",
    "price: €20 £15 ¥2000", "© 2024 ™ ®", "temperature 25°C", "½ cup, ¼ tsp", "naïve café résumé",
    "à la carte", "voilà", "déjà vu", "Zürich Straße", "jalapeño piñata", "smörgåsbord", "fiancée",
    "a non\u00a0breaking space".encode().decode("unicode_escape"), "bullet • point", "→ arrow ← ↑",
    "The Mona Lisa doesn’t have eyebrows.", "it’s “quoted” — mixed…",
]
FTFY_CODECS = ["sloppy-windows-1252", "latin-1", "sloppy-windows-1251", "macroman", "cp437", "iso-8859-2",
               "sloppy-windows-1250", "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257"]


def ftfy_stress_inputs(rng, count):
    """Mojibake made on purpose: UTF-8 decoded with a wrong codec, sometimes twice, partially,
    with NBSP turned into a space, with bytes lost to '?' or U+FFFD, or mixed with clean text."""
    import ftfy.bad_codecs  # noqa: F401
    out = []
    while len(out) < count:
        text = rng.choice(FTFY_SOURCE_TEXTS)
        codec = rng.choice(FTFY_CODECS)
        try:
            bad = text.encode("utf-8").decode(codec)
        except UnicodeDecodeError:
            continue
        r = rng.random()
        if r < 0.15:
            try:
                bad = bad.encode("utf-8").decode(rng.choice(FTFY_CODECS[:2]))
            except UnicodeDecodeError:
                pass
        elif r < 0.3:
            bad = bad.replace("\xa0", " ")
        elif r < 0.4:
            chars = list(bad)
            if chars:
                k = rng.randrange(len(chars))
                chars[k] = rng.choice(["?", "\ufffd"])
            bad = "".join(chars)
        elif r < 0.55:
            bad = rng.choice(FTFY_SOURCE_TEXTS) + " " + bad + " " + rng.choice(["&amp;", "ok", "“x”", "ﬁ", "！"])
        elif r < 0.65:
            bad = bad.upper() if rng.random() < 0.5 else bad.lower()
        elif r < 0.75:
            bad = "\n".join([bad, rng.choice(FTFY_SOURCE_TEXTS), "<tag> &amp; " + bad])
        out.append(bad)
    return out


# ----------------------------------------------------------------------------- reference runs

LEGACY_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import transformers
from transformers import CLIPTokenizer
tok = CLIPTokenizer.from_pretrained(sys.argv[1])
assert tok.fix_text is not None, "ftfy must be importable for the legacy flavour"
prompts = json.load(sys.stdin)
ids = [tok(p, padding="max_length", max_length=77, truncation=True).input_ids for p in prompts]
json.dump({"version": transformers.__version__, "class": type(tok).__module__ + "." + type(tok).__name__,
           "pad_token": tok.pad_token, "pad_token_id": tok.pad_token_id, "ids": ids}, sys.stdout)
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--legacy-python", default=os.environ.get("LEGACY_PYTHON", "/tmp/tf4venv/bin/python"))
    args = parser.parse_args()

    import ftfy
    import transformers
    from transformers import CLIPTokenizer

    assert transformers.__version__ == "5.23.0", transformers.__version__
    assert ftfy.__version__ == "6.3.1", ftfy.__version__

    merges = open_clip_merges()
    merges_sha = hashlib.sha256(("\n".join(merges) + "\n").encode("utf-8")).hexdigest()
    work = tempfile.mkdtemp(prefix="sd2tok-")
    sd2 = os.path.join(work, "sd2")
    write_folder(sd2, merges, SD2_SPECIAL_TOKENS_MAP, SD2_TOKENIZER_CONFIG)

    tok = CLIPTokenizer.from_pretrained(sd2)

    def enc(t, p):
        return t(p, padding="max_length", max_length=MAX_LENGTH, truncation=True).input_ids

    # Sanity checks against ids known from the real SD2 tokenizer.
    assert tok.pad_token == "!" and tok.pad_token_id == 0, (tok.pad_token, tok.pad_token_id)
    assert tok.bos_token_id == 49406 and tok.eos_token_id == 49407
    assert enc(tok, "a photo of a cat") == [49406, 320, 1125, 539, 320, 2368, 49407] + [0] * 70
    assert enc(tok, "") == [49406, 49407] + [0] * 75
    assert enc(tok, "hello! world!!")[:8] == [49406, 3306, 0, 1002, 0, 0, 49407, 0]

    corpus = build_corpus()
    assert len(corpus) >= 500, len(corpus)
    ids = [enc(tok, p) for p in corpus]

    legacy = subprocess.run([args.legacy_python, "-c", LEGACY_SCRIPT, sd2], input=json.dumps(corpus),
                            capture_output=True, text=True, check=True)
    legacy = json.loads(legacy.stdout)
    assert legacy["pad_token_id"] == 0, legacy["pad_token_id"]

    # transformers-5 save (tokenizer.json + tokenizer_config.json only).
    saved = os.path.join(work, "saved_v5")
    tok.save_pretrained(saved)
    with open(os.path.join(saved, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer_json = json.load(f)
    with open(os.path.join(saved, "tokenizer_config.json"), encoding="utf-8") as f:
        saved_config = json.load(f)
    assert sorted(os.listdir(saved)) == ["tokenizer.json", "tokenizer_config.json"], os.listdir(saved)
    reloaded = CLIPTokenizer.from_pretrained(saved)

    variants = {}
    for name, (special_map, config) in FOLDER_VARIANTS.items():
        folder = os.path.join(work, name)
        write_folder(folder, merges, special_map, config)
        t = CLIPTokenizer.from_pretrained(folder)
        variants[name] = {
            "special_tokens_map.json": special_map,
            "tokenizer_config.json": config,
            "pad_token_id": t.pad_token_id,
            "added_tokens": [{"content": a.content, "normalized": a.normalized}
                             for a in t.backend_tokenizer.get_added_tokens_decoder().values()],
            "cases": [{"prompt": p, "ids": enc(t, p)} for p in VARIANT_PROMPTS],
        }
    variants["transformers5_tokenizer_json"] = {
        "tokenizer_config.json": saved_config,
        # The Swift test rebuilds tokenizer.json from the bundled vocabulary plus these parts.
        "added_tokens": tokenizer_json["added_tokens"],
        "model_keys": {k: v for k, v in tokenizer_json["model"].items() if k not in ("vocab", "merges")},
        "merges_format": "pairs" if isinstance(tokenizer_json["model"]["merges"][0], list) else "strings",
        "pad_token_id": reloaded.pad_token_id,
        "cases": [{"prompt": p, "ids": enc(reloaded, p)} for p in VARIANT_PROMPTS],
    }
    for case in variants["transformers5_tokenizer_json"]["cases"]:
        assert case["ids"] == enc(tok, case["prompt"]), case["prompt"]

    cases = []
    for p, a, b in zip(corpus, ids, legacy["ids"]):
        assert len(a) == MAX_LENGTH and len(b) == MAX_LENGTH
        case = {"prompt": p, "ids": a}
        # Omitted when equal, to keep the file small: `ids_ftfy` defaults to `ids`, `ftfy` to `prompt`.
        if b != a:
            case["ids_ftfy"] = b
        fixed = ftfy.fix_text(p)
        if fixed != p:
            case["ftfy"] = fixed
        cases.append(case)

    ftfy_cases = []
    for text in ftfy_stress_inputs(random.Random(77), 400):
        ftfy_cases.append([text, ftfy.fix_text(text)])

    doc = {
        "generator": "Tests/Reference/tokenizer/make_tokenizer_fixtures.py",
        "reference": {
            "ids": f"transformers {transformers.__version__} CLIPTokenizer ({type(tok).__module__})",
            "ids_ftfy": f"transformers {legacy['version']} {legacy['class']} (slow) with ftfy {ftfy.__version__}",
            "ftfy": f"ftfy {ftfy.__version__} fix_text",
            "call": 'tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids',
        },
        "max_length": MAX_LENGTH,
        "pad_token_id": tok.pad_token_id,
        "merges_sha256": merges_sha,
        "folder_variants": variants,
        "ftfy_cases": ftfy_cases,
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key in ["generator", "reference", "max_length", "pad_token_id", "merges_sha256", "folder_variants"]:
            f.write(f"  {json.dumps(key)}: {json.dumps(doc[key], ensure_ascii=True, separators=(',', ':'))},\n")
        f.write('  "ftfy_cases": [\n')
        for i, c in enumerate(ftfy_cases):
            f.write("    " + json.dumps(c, ensure_ascii=True) + (",\n" if i + 1 < len(ftfy_cases) else "\n"))
        f.write("  ],\n")
        f.write('  "cases": [\n')
        for i, c in enumerate(cases):
            f.write("    " + json.dumps(c, ensure_ascii=True, separators=(",", ":")) + (",\n" if i + 1 < len(cases) else "\n"))
        f.write("  ]\n}\n")
    differing = sum(1 for c in cases if "ids_ftfy" in c)
    print(f"wrote {OUT}: {len(cases)} prompts ({differing} tokenize differently with ftfy), "
          f"{os.path.getsize(OUT)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
