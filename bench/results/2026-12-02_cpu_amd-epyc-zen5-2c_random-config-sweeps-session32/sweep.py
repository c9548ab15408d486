"""Draws of tests/test_random_configs.py far beyond its seeds: how close each case comes to its
bound. Run from the repository root: python <this file> FIRST LAST (seeds FIRST..LAST-1).

float64: the test itself (any failure printed). float32: the largest, over a case's results, of
err / max(4 err_torch, 1e-5), the test's own measure (1.0 is the bound). 16-bit (both dtypes):
err / max(err_torch, err_plain, eps) and err_plain / max(err_torch, eps), each bounded by 4."""
import copy
import random
import sys

import torch

sys.path.insert(0, "tests")
from fused_rnn import _C  # noqa: E402

_C._set_cpu_team_min_flops(0)  # as conftest does for the tests
import test_random_configs as M  # noqa: E402

lo, hi = int(sys.argv[1]), int(sys.argv[2])
f64_fails, f32, low = 0, [], []
for seed in range(lo, hi):
    try:
        M.test_random_configuration_float64(seed)
    except Exception as e:  # noqa: BLE001
        f64_fails += 1
        print("float64 FAIL", seed, M.describe(M.draw(seed)), str(e)[:300], flush=True)
    c = M.draw(seed, M.SMOOTH_MODES)
    ref, fused, ref64 = M.make_modules(c, seed, torch.float32)
    x, states = M.make_inputs(c, seed, torch.float32)
    want = sum(M.run(c, ref64, *M.leaf_copies(x, states, torch.float64), seed, torch.float32), [])
    theirs = sum(M.run(c, ref, *M.leaf_copies(x, states, torch.float32), seed, torch.float32), [])
    with M.switched(c["switches"]):
        ours = sum(M.run(c, fused, *M.leaf_copies(x, states, torch.float32), seed, torch.float32), [])
    f32.append((max(M.relative_error(a, w) / max(4 * M.relative_error(b, w), 1e-5)
                    for a, b, w in zip(ours, theirs, want)), seed))
    for dtype in (torch.bfloat16, torch.float16):
        rng = random.Random(seed)
        switches = {name: rng.choice(values) for name, values in M.LOW_SWITCHES.items()}
        ref, fused, ref64 = M.make_modules(c, seed, dtype)
        x, states = M.make_inputs(c, seed, dtype)
        want = sum(M.run(c, ref64, *M.leaf_copies(x, states, torch.float64), seed, dtype), [])
        theirs = sum(M.run(c, ref, *M.leaf_copies(x, states, dtype), seed, dtype), [])
        with M.switched({**c["switches"], **switches}):
            ours = sum(M.run(c, fused, *M.leaf_copies(x, states, dtype), seed, dtype), [])
        with M.switched({**c["switches"], "cpu_16bit_weights": False, "cpu_bf16_dot": False}):
            plain = sum(M.run(c, copy.deepcopy(fused), *M.leaf_copies(x, states, dtype), seed, dtype), [])
        eps = torch.finfo(dtype).eps
        e = [(M.relative_error(a, w), M.relative_error(b, w), M.relative_error(p, w))
             for a, b, p, w in zip(ours, theirs, plain, want)]
        low.append((max(o / max(t, p, eps) for o, t, p in e), max(p / max(t, eps) for o, t, p in e), seed,
                    str(dtype)[6:]))
f32.sort(reverse=True)
print(f"seeds {lo}..{hi - 1}: float64 failures {f64_fails}")
print("float32, err / bound, largest:", [(round(r, 3), s) for r, s in f32[:5]])
print("16-bit, fused / max(torch, plain, eps), largest:",
      [(round(r, 3), s, d) for r, _, s, d in sorted(low, reverse=True)[:5]])
print("16-bit, plain / max(torch, eps), largest:",
      [(round(r, 3), s, d) for _, r, s, d in sorted(low, key=lambda t: -t[1])[:5]])
