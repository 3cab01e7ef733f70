#!/usr/bin/python3
"""Writes tests/fixtures/t5_relpos/buckets.txt: T5 relative position buckets as PyTorch
computes them (Wan's T5RelativeEmbedding._relative_position_bucket, float32 log), for
offsets -600..600 and a few (num_buckets, max_distance, bidirectional) settings, umT5's
(32, 128, bidirectional) first. Line format: "nb md bidir" then one line of 1201 buckets.
Run with Debian's /usr/bin/python3 (python3-torch).
"""
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "t5_relpos", "buckets.txt")


def bucket(rel_pos, num_buckets, max_dist, bidirectional):
    if bidirectional:
        num_buckets //= 2
        rel_buckets = (rel_pos > 0).long() * num_buckets
        rel_pos = torch.abs(rel_pos)
    else:
        rel_buckets = 0
        rel_pos = -torch.min(rel_pos, torch.zeros_like(rel_pos))
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(rel_pos.float() / max_exact) / math.log(max_dist / max_exact) *
                         (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return rel_buckets + torch.where(rel_pos < max_exact, rel_pos, large)


def main():
    rel = torch.arange(-600, 601)
    lines = []
    for nb, md, bi in [(32, 128, 1), (32, 128, 0), (64, 256, 1), (16, 64, 1), (32, 64, 0)]:
        lines.append("%d %d %d" % (nb, md, bi))
        lines.append(" ".join(str(int(b)) for b in bucket(rel, nb, md, bool(bi))))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
