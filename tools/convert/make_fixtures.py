#!/usr/bin/python3
"""Write the small .pth files the converter is tested on (needs torch; run once).

    /usr/bin/python3 tools/convert/make_fixtures.py tests/fixtures/convert

Values follow simple formulas so the C test checks them without another fixture:
  a.weight  F32  [3,4]    (i * 0.5 - 1)            i = row-major index
  b.weight  BF16 [2,3,2]  i - 6                    (exact in bf16)
  c.t       F32  [4,3]    the transpose of a [3,4] tensor of i  -> c[r][k] = k*4 + r
  d.view    F16  [2,2]    a slice [1:3, 1:3] of a [4,4] tensor of i -> d[r][k] = (r+1)*4 + k+1
  e.count   I64  [3]      10, 20, 30
"""

import collections
import os
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/convert"
os.makedirs(out, exist_ok=True)
sd = collections.OrderedDict()
sd["a.weight"] = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1
sd["b.weight"] = (torch.arange(12, dtype=torch.float32) - 6).reshape(2, 3, 2).to(torch.bfloat16)
sd["c.t"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
sd["d.view"] = torch.arange(16, dtype=torch.float16).reshape(4, 4)[1:3, 1:3]
sd["e.count"] = torch.tensor([10, 20, 30], dtype=torch.int64)
torch.save(sd, os.path.join(out, "state_dict.pth"))
torch.save({"model": torch.nn.Linear(2, 2).state_dict(), "step": 7}, os.path.join(out, "wrapped.pth"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


torch.save({"x": torch.zeros(1), "evil": Evil()}, os.path.join(out, "evil.pth"))
print("wrote", out)
