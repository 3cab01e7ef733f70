#!/usr/bin/python3
"""train_tokenizer.py - stage 1 of reel-tiny: a SentencePiece unigram tokenizer.

Trained on every single-object caption clips.py can produce (all shapes x colours x
motions x backgrounds, held-out ones included: the tokenizer must be able to spell the
evaluation prompts) plus a sample of two-object captions and each word alone. umT5's id conventions:
pad 0, eos 1 (</s>), unk 2, no bos; byte fallback so any text tokenizes.
Deterministic (one thread, fixed order). Writes build/train-tiny/tokenizer.model.
"""
import io
import itertools
import os

import numpy as np
import sentencepiece as spm

import clips
from common import work


def corpus():
    lines = []
    for s, c, m, b in itertools.product(clips.SHAPES, clips.COLORS, clips.MOTIONS, clips.BACKGROUNDS):
        lines.append(clips.caption({"objects": [{"shape": s, "color": c, "motion": m}], "background": b}))
    rng = np.random.default_rng(1)
    for _ in range(2000):
        a = clips.sample_attrs(rng, allow_held_out=True)
        if len(a["objects"]) == 2:
            lines.append(clips.caption(a))
    # Each word on its own line as well: with only ~35 distinct words the unigram
    # trainer otherwise keeps sub-word pieces for the long ones.
    words = sorted(set(" ".join(lines).split()))
    return lines + words * 20


def main():
    lines = corpus()
    prefix = work("tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=prefix, model_type="unigram",
        vocab_size=400, hard_vocab_limit=False, byte_fallback=True, character_coverage=1.0,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, seed_sentencepiece_size=100000,
        shuffle_input_sentence=False, normalization_rule_name="nmt_nfkc", minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    print("tokenizer: %d captions, vocab %d, e.g. %s" % (
        len(lines), sp.get_piece_size(), sp.encode(lines[0], out_type=str)))


if __name__ == "__main__":
    main()
