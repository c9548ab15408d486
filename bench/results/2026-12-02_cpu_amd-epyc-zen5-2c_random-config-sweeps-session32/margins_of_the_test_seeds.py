"""The test's own seeds (FLOAT64/FLOAT32/LOW_SEEDS): the worst case's share of its bound, with the CPU
kernels held to the capabilities given (argv[1], comma-separated: what a CPU without AVX-512 or
AVX2 would run) and AVX512-BF16 products on or off (argv[2]). Run from the repository root."""
import sys, torch, copy, random
sys.path.insert(0, "tests")
from fused_rnn import _C
_C._set_cpu_team_min_flops(0)
import test_random_configs as M
caps = sys.argv[1].split(",")
M.AVAILABLE_CAPABILITIES[:] = caps
_C._set_cpu_bf16_dot(sys.argv[2] == "1")
f32, low = [], []
for seed in M.FLOAT64_SEEDS:
    M.test_random_configuration_float64(seed)
for seed in M.FLOAT32_SEEDS:
    c = M.draw(seed, M.SMOOTH_MODES)
    ref, fused, ref64 = M.make_modules(c, seed, torch.float32)
    x, states = M.make_inputs(c, seed, torch.float32)
    want = sum(M.run(c, ref64, *M.leaf_copies(x, states, torch.float64), seed, torch.float32), [])
    theirs = sum(M.run(c, ref, *M.leaf_copies(x, states, torch.float32), seed, torch.float32), [])
    with M.switched(c["switches"]):
        ours = sum(M.run(c, fused, *M.leaf_copies(x, states, torch.float32), seed, torch.float32), [])
    f32.append((max(M.relative_error(a, w) / max(4 * M.relative_error(b, w), 1e-5) for a, b, w in zip(ours, theirs, want)), seed))
for seed in M.LOW_SEEDS:
    for dtype in (torch.bfloat16, torch.float16):
        c = M.draw(seed, M.SMOOTH_MODES)
        rng = random.Random(seed)
        low_sw = {name: rng.choice(values) for name, values in M.LOW_SWITCHES.items()}
        ref, fused, ref64 = M.make_modules(c, seed, dtype)
        x, states = M.make_inputs(c, seed, dtype)
        want = sum(M.run(c, ref64, *M.leaf_copies(x, states, torch.float64), seed, dtype), [])
        theirs = sum(M.run(c, ref, *M.leaf_copies(x, states, dtype), seed, dtype), [])
        with M.switched({**c["switches"], **low_sw}):
            ours = sum(M.run(c, fused, *M.leaf_copies(x, states, dtype), seed, dtype), [])
        with M.switched({**c["switches"], "cpu_16bit_weights": False, "cpu_bf16_dot": False}):
            plain = sum(M.run(c, copy.deepcopy(fused), *M.leaf_copies(x, states, dtype), seed, dtype), [])
        eps = torch.finfo(dtype).eps
        e = [(M.relative_error(a, w), M.relative_error(b, w), M.relative_error(p, w)) for a, b, p, w in zip(ours, theirs, plain, want)]
        low.append((max(o / max(t, p, eps) / 4 for o, t, p in e), max(p / max(t, eps) / 4 for o, t, p in e), seed))
print(caps, "bf16dot", sys.argv[2], "f32 worst/bound", max(f32), "16bit worst/bound", max(l[0] for l in low), max(l[1] for l in low))
