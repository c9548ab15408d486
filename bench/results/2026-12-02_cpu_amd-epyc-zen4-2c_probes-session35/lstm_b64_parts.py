"""LSTM training at B=64 H=128 on this CPU (AMD Zen 4): forward and whole step, torch.nn against
fused_rnn by default and with one switch flipped at a time (weight gradients off the own product;
oneDNN off; the fused steps off; the capability AVX2), interleaved rounds in one process, medians."""
import statistics, time, torch, fused_rnn
from fused_rnn import _C
torch.set_num_threads(2)
def bench(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3
variants = {
    "default": {},
    "wgrad tiles off": {"_set_cpu_weight_grad_tiles": False},
    "onednn off": {"_set_cpu_onednn_gemm": False},
    "both off": {"_set_cpu_weight_grad_tiles": False, "_set_cpu_onednn_gemm": False},
    "avx2": {"_set_cpu_capability": "avx2"},
}
for B, H, T in [(64, 128, 50), (64, 128, 200), (64, 256, 50), (64, 512, 50)]:
    torch.manual_seed(0)
    ref = torch.nn.LSTM(H, H); fused = fused_rnn.LSTM(H, H); fused.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, requires_grad=True)
    g = torch.randn(T, B, H)
    reps = 9
    res = {}
    for rnd in range(3):
        names = list(variants) if rnd % 2 == 0 else list(reversed(variants))
        for name in ["torch.nn"] + names:
            m = ref if name == "torch.nn" else fused
            olds = {k: getattr(_C, k)(v) for k, v in variants.get(name, {}).items()}
            fwd = lambda: m(x)[0]
            step = lambda: m(x)[0].backward(g)
            step()
            tf, ts = bench(fwd, reps), bench(step, reps)
            for k, v in olds.items():
                getattr(_C, k)(v)
            res.setdefault(name, []).append((tf, ts))
    line = f"B={B} H={H} T={T}:"
    t_ref = statistics.median(b for _, b in res["torch.nn"])
    for name, v in res.items():
        tf = statistics.median(a for a, _ in v); ts = statistics.median(b for _, b in v)
        line += f"\n  {name:16s} fwd {tf:7.2f}  step {ts:7.2f}  bwd~{ts - tf:7.2f} ms  step {t_ref / ts:.2f}x torch.nn"
    print(line, flush=True)
