# Cells stepped in a Python loop over T steps (then, in training, one backward), as RL and seq2seq
# code runs them: torch.nn against fused_rnn in one process, each round timing every variant in a
# rotating order, medians of the rounds (us per step).
#   new:  the C++ entry points (autograd node / direct op) and small runs off the thread team (default)
#   py:   the Python autograd.Function and torch.ops path (FUSED_RNN_CPP_AUTOGRAD=0), small runs off the team
#   old:  the Python path with every run on the team: the calls as they ran before this change
import datetime, platform, statistics, sys, time
import torch
import fused_rnn
from fused_rnn import _C, functional as F

torch.set_num_threads(2)
DEFAULT_LEAST = _C.build_info()["cpu_team_min_flops"]


def variant(cpp, least):
    def set_():
        F._set_cpp_autograd(cpp)
        _C._set_cpu_team_min_flops(least)
    return set_


VARIANTS = {"nn": None, "new": variant(True, DEFAULT_LEAST), "py": variant(False, DEFAULT_LEAST), "old": variant(False, 0)}


def case(cell, H, B, T, mode, rounds=15):
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
            if r:  # round 0 warms up
                times[k].append((time.perf_counter() - a) / n / T * 1e6)
    VARIANTS["new"]()
    med = {k: statistics.median(v) for k, v in times.items()}
    spread = {k: 100 * (max(v) - min(v)) / 2 / med[k] for k, v in times.items()}
    print(f"{cell:8s} H={H:<4d} B={B:<3d} T={T} {mode:5s} | us/step nn {med['nn']:8.1f} new {med['new']:8.1f} "
          f"py {med['py']:8.1f} old {med['old']:8.1f} | nn/new {med['nn'] / med['new']:.2f}x nn/old "
          f"{med['nn'] / med['old']:.2f}x new/old time {med['new'] / med['old']:.3f} | n={n}", flush=True)


print(f"# {platform.machine()} | torch {torch.__version__} | fused_rnn at {sys.argv[1] if len(sys.argv) > 1 else '?'} | "
      f"2 threads | float32 | team least work {DEFAULT_LEAST} | {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
      flush=True)
for mode in ("inf", "train"):
    for cell in ("LSTMCell", "GRUCell", "RNNCell"):
        for H, B in ((32, 1), (64, 1), (128, 16), (256, 32), (512, 64)):
            case(cell, H, B, 20, mode)
