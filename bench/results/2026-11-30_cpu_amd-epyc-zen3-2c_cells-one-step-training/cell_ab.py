# One-step cells in training (a Python loop over T steps, then one backward), at the batches where
# the fused forward used to pack panels for a single use: torch.nn against fused_rnn's default,
# panels (FUSED_RNN_CPU_DOTS=never, the forward's choice at B > 16 before this change) and the
# unfused path (BLAS GEMM + pointwise, _set_cpu_fused(False)), one process, rotating order,
# medians of the rounds (us per step).
import datetime, platform, statistics, sys
import time
import torch
import fused_rnn
from fused_rnn import _C

torch.set_num_threads(2)


def variant(dots, fused):
    def set_():
        _C._set_cpu_dots(dots)
        _C._set_cpu_fused(fused)
    return set_


VARIANTS = {"nn": None, "default": variant("auto", True), "panels": variant("never", True), "blas": variant("auto", False)}


def case(cell, H, B, T, mode, rounds=11):
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H)
    fused = getattr(fused_rnn, cell)(H, H)
    fused.load_state_dict(ref.state_dict())
    xs = torch.randn(T, B, H, requires_grad=mode == "train")
    lstm = cell == "LSTMCell"

    def loop(m):
        with torch.set_grad_enabled(mode == "train"):
            h = torch.zeros(B, H)
            c = torch.zeros(B, H)
            for i in range(T):
                if lstm:
                    h, c = m(xs[i], (h, c))
                else:
                    h = m(xs[i], h)
            if mode == "train":
                h.sum().backward()

    n = max(2, int(4e6 / (H * H * B * T / 64 + 3000 * T)))
    times = {k: [] for k in VARIANTS}
    names = list(VARIANTS)
    for r in range(rounds + 1):
        for k in names[r % 4:] + names[:r % 4]:
            if VARIANTS[k]:
                VARIANTS[k]()
            m = ref if k == "nn" else fused
            a = time.perf_counter()
            for _ in range(n):
                loop(m)
            if r:
                times[k].append((time.perf_counter() - a) / n / T * 1e6)
    VARIANTS["default"]()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{cell:8s} H={H:<4d} B={B:<3d} T={T} {mode:5s} | us/step nn {med['nn']:7.1f} default {med['default']:7.1f} "
          f"panels {med['panels']:7.1f} blas {med['blas']:7.1f} | nn/default {med['nn'] / med['default']:.2f}x "
          f"nn/panels {med['nn'] / med['panels']:.2f}x nn/blas {med['nn'] / med['blas']:.2f}x | n={n}", flush=True)


print(f"# {platform.machine()} | torch {torch.__version__} | fused_rnn at {sys.argv[1] if len(sys.argv) > 1 else '?'} | "
      f"2 threads | float32 | {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
for mode in sys.argv[2:] or ("train",):
    for cell in ("RNNCell", "GRUCell", "LSTMCell"):
        for H, B in ((256, 32), (512, 32), (256, 64), (512, 64)):
            case(cell, H, B, 20, mode)
