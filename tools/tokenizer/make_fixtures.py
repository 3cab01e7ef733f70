#!/usr/bin/python3
"""Trains small SentencePiece unigram models and records the ids sentencepiece gives.

Writes tests/fixtures/tokenizer/: for each model NAME, NAME.model and NAME.json, where
the JSON holds {"model", "context_len", "eos_id", "cases": [{"text", "clean", "ids",
"raw"}]}. "clean" is the text after Wan's prompt cleaning as far as the C side
reproduces it (html.unescape twice, strip, runs of whitespace to one space, strip; NOT
ftfy). "ids" is sentencepiece's ids for the clean text, truncated to context_len - 1,
then </s> (the model's eos id): what HuggingFace's truncation=True, max_length=512
gives in Wan. "raw" is sentencepiece's ids for the text as is (no cleaning, no eos),
to pin the normalizer's own whitespace handling.

Run with Debian's interpreter (python3-sentencepiece): /usr/bin/python3 make_fixtures.py
Deterministic (fixed seeds, one training thread).
"""
import html
import io
import json
import os
import random
import re
import sys

import sentencepiece as spm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "tokenizer")
CONTEXT_LEN = 512

EN = ("a video of the cat dog runs jumps over lazy fox in a garden at sunset with golden light "
      "camera slowly pans across city street rain night neon reflections cinematic shot wide "
      "close up portrait of an old man smiling children playing football on the beach waves "
      "ocean mountains snow forest river boat flying bird sky clouds dramatic lighting high "
      "quality detailed realistic style painting drawing anime character walking running "
      "dancing music festival crowd people market food cooking kitchen table coffee cup "
      "morning breakfast window light shadow red green blue yellow purple orange black white "
      "HELLO World Video Frame Render Farm GPU CPU 4K HDR 24fps 1080p 720p").split()
ACCENT = ("café crème brûlée naïve façade jalapeño señor über straße Müller Ærø smörgåsbord "
          "déjà vu résumé coöperate Tiếng Việt Hà Nội phở bánh mì Łódź Kraków São Paulo "
          "garçon élève à où être Ångström Zürich Ελληνικά αβγ Москва привет мир").split()
CJK = ("视频 一只猫 在花园里 日落 金色的光 城市 街道 雨夜 霓虹灯 电影 镜头 色调艳丽 过曝 静态 "
       "细节模糊不清 字幕 风格 作品 画作 画面 静止 整体发灰 最差质量 低质量 "
       "ねこ 猫が走る 東京 さくら カメラ アニメ 한국어 고양이 영상 서울 바다").split()
EMOJI = ["😀", "🎬", "🐱", "🌅", "🚀", "❤️", "👍🏽", "🇫🇷", "👨‍👩‍👧", "✨", "🔥"]
FULLWIDTH = ["ＡＢＣ", "１２３", "ｖｉｄｅｏ", "（ｔｅｓｔ）", "！？", "ｶﾀｶﾅ", "㍿", "①②", "ﬁ", "Ⅻ"]
PUNCT = list(".,;:!?-'\"()[]{}/@#$%^*+=~_|") + ["...", "--", "—", "–", "“", "”", "‘", "’", "«", "»"]
# Characters that are never in the training corpus: unknowns / byte fallback.
RARE = ["龘", "𠀋", "𝔘", "ᚠ", "ꙮ", "🦄", "🧬", "ǅ", "Ꭰ", "ℵ", "⅞", "‱", "\u0301", "ऄ", "ไทย", "ጀ"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0", "\u2009", "\u2028", "\x0b", "\x0c",
          "\x1c", "\x85", "\u200b", "\u202f", " \t \n "]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&nbsp;", "&copy;", "&copy",
            "&amp;amp;", "&amp;lt;b&amp;gt;", "&#x1F600;", "&#128512;", "&eacute;", "&Eacute",
            "&hellip;", "&mdash;", "&euro;", "&ampfoo", "&notit;", "&notin;", "&#0;", "&#128;",
            "&#150;", "&#xD800;", "&#1114112;", "&#99999999999999999999;", "&unknownentity;",
            "&;", "& amp;", "&#;", "&#x;", "&#65", "&#x41g", "&NotNestedGreaterGreater;",
            "&fjlig;", "&AMP", "&AMP;", "&Amp;", "&zwnj;", "&thinsp;", "&Tab;", "&NewLine;",
            "&#9;", "&#10;", "&#xA0;", "&#12288;", "&#x0d;", "&#x1;", "&#xFFFE;", "&#x10FFFF;",
            "&lt;p&gt;hello&lt;/p&gt;", "&&amp;&", "&aacute&eacute", "&LongLeftRightArrow;",
            "&frac12;", "&frac12", "&frac1", "&sup2;", "&times;", "&#xfeff;"]


def whitespace_clean_python(text):
    """The part of Wan's cleaning the C side reproduces (ftfy.fix_text is not)."""
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def pseudo_words(rng):
    """Made-up words and characters so the corpus has enough distinct pieces."""
    syl = [c + v for c in "bcdfghjklmnprstvwz" for v in ["a", "e", "i", "o", "u", "é", "ö", "ai"]]
    latin = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(1500)]
    han = [chr(0x4E00 + rng.randrange(0, 900)) + chr(0x4E00 + rng.randrange(0, 900))
           for _ in range(600)]
    hangul = [chr(0xAC00 + rng.randrange(0, 400)) for _ in range(200)]
    kana = ["".join(chr(0x3041 + rng.randrange(0, 80)) for _ in range(2)) for _ in range(200)]
    return [latin, latin, han, hangul, kana]


def corpus(rng, lines):
    pools = [EN] * 5 + [ACCENT] * 2 + [CJK] * 2 + [EMOJI, FULLWIDTH, PUNCT] + pseudo_words(rng)
    out = []
    for _ in range(lines):
        words = []
        for _ in range(rng.randint(3, 18)):
            words.append(rng.choice(rng.choice(pools)))
        out.append(" ".join(words))
    return out


def random_text(rng, pools, n):
    parts = []
    for _ in range(n):
        pool = rng.choice(pools)
        parts.append(rng.choice(pool))
        parts.append(rng.choice([" ", " ", " ", "", rng.choice(SPACES)]))
    return "".join(parts)


def test_strings(rng):
    fixed = [
        "", " ", "   ", "\t\n", "a", "A", "hello", "hello world", "  hello   world  ",
        "Hello, World!", "a video of a cat", "A VIDEO OF A CAT", "café", "cafe\u0301",
        "naïve façade", "Straße", "ǅemal", "ﬁne", "Ⅻ", "①②③", "㍿", "ｶﾀｶﾅ", "ＡＢＣ１２３",
        "（ｔｅｓｔ）", "全角　スペース", "视频", "一只猫在花园里", "色调艳丽，过曝，静态", "ねこ",
        "한국어 고양이", "😀", "🎬🐱", "👨‍👩‍👧", "🇫🇷", "👍🏽", "❤️", "🦄 unicorn", "龘", "𠀋",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ꙮ", "ไทย", "Ελληνικά", "Москва", "x\u200by", "\u200b", "a\u00a0b",
        "a\u3000b", "a\u2028b", "tab\there", "new\nline", "cr\r\nlf", "\x0b\x0c", "x\x1cy",
        "x\x85y", "...", "—", "“quoted”", "‘single’", "«guillemets»", "e-mail@example.com",
        "https://example.com/path?q=1&r=2", "C:\\path\\file.txt", "$100.00", "50%",
        "1234567890", "3.14159", "1,000,000", "2024-01-01", "12:30pm", "#hashtag", "@user",
        "<extra_id_0>", "<unk>", "</s>", "<s>", "<pad>", "▁", "▁▁x", "_underscore_",
        "<sep>", "Wan", "Wan2.1", "<sep>Wan<sep>", "<ctl>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "the the the the the", "ab" * 40, "🔥" * 20, "猫" * 30, " x " * 25,
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
        "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
        "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走",
        "\ufeffBOM", "\ufffd", "a\ufffdb", "\u0000"[1:] + "nul-free", "\u00ad soft hyphen",
        "\u2160\u2161", "\u00bd", "\u2126 \u212b", "\u1e9b\u0323", "\uff61\uff64", "\u2002en",
        "x" * 600, "word " * 700, ("a cat " * 300).strip(), "猫の" * 400,
    ]
    for e in ENTITIES:
        fixed.append(e)
        fixed.append("x " + e + " y")
    pools = [EN, EN, ACCENT, CJK, EMOJI, FULLWIDTH, PUNCT, RARE, SPACES, ENTITIES]
    gen = []
    for i in range(230):
        gen.append(random_text(rng, pools, rng.randint(1, 40 if i % 10 else 400)))
    return fixed + gen


def encode_cleaned(sp, text):
    ids = sp.encode(whitespace_clean_python(text))
    ids = ids[:CONTEXT_LEN - 1] + [sp.eos_id()]
    return ids


MODELS = [
    # name, trainer options
    ("nfkc_bf", dict(vocab_size=1500, normalization_rule_name="nfkc", byte_fallback=True,
                     character_coverage=0.98, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)),
    ("nmt_cf", dict(vocab_size=2500, normalization_rule_name="nmt_nfkc_cf", byte_fallback=False,
                    character_coverage=0.995, user_defined_symbols=["<sep>", "Wan"],
                    control_symbols=["<ctl>"])),
    ("identity_raw", dict(vocab_size=1400, normalization_rule_name="identity",
                          remove_extra_whitespaces=False, add_dummy_prefix=False,
                          byte_fallback=True, character_coverage=0.999, pad_id=3,
                          split_digits=True)),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(20240601)
    text = corpus(rng, 6000)
    strings = test_strings(random.Random(7))
    for name, opts in MODELS:
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model,
                                       model_type="unigram", num_threads=1, seed_sentencepiece_size=20000,
                                       minloglevel=2, **opts)
        blob = model.getvalue()
        with open(os.path.join(OUT, name + ".model"), "wb") as f:
            f.write(blob)
        sp = spm.SentencePieceProcessor(model_proto=blob)
        doc = {
            "model": name + ".model",
            "context_len": CONTEXT_LEN,
            "eos_id": sp.eos_id(),
            "cases": [{"text": s, "clean": whitespace_clean_python(s), "ids": encode_cleaned(sp, s),
                       "raw": sp.encode(s)} for s in strings],
        }
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {sp.get_piece_size()} pieces, {len(blob)} bytes, "
              f"{len(strings)} strings", file=sys.stderr)


if __name__ == "__main__":
    main()
