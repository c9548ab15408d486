"""Same-process A/B of the Python around the ops: 'new' is the tree as it is, 'old' the same
tree with the direct path off (functional._direct -> False) and the final states copied
(functional._cat_states -> torch.cat even for one piece), which is how the calls ran before.
Each round times torch.nn, then one variant, torch.nn, the other (order alternating by round);
the ratio is torch.nn / fused from adjacent runs; medians over rounds.
  python ab_python.py [rounds]"""
import sys, timeit, statistics, datetime
import torch, fused_rnn
from fused_rnn import functional

torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
print(f"# ab_python.py, torch {torch.__version__}, 2 threads, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {rounds} rounds")
new_direct, new_cat = functional._direct, functional._cat_states


def variant(name):
    if name == "new":
        functional._direct, functional._cat_states = new_direct, new_cat
    else:
        functional._direct = lambda input, tensors: False
        functional._cat_states = lambda states: torch.cat(states, 0)


def t(f, n):
    return min(timeit.repeat(f, number=n, repeat=5)) / n * 1e6


cases = [(name, H, B, 1) for H in (32, 128) for B in (1, 16) for name in ("LSTMCell", "GRUCell", "RNNCell")]
cases += [(name, 128, 1, T) for T in (1, 50) for name in ("LSTM", "GRU", "RNN")]
for name, H, B, T in cases:
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(H, H)
    fm = getattr(fused_rnn, name)(H, H)
    fm.load_state_dict(ref.state_dict())
    cell = name.endswith("Cell")
    x = torch.randn(B, H) if cell else torch.randn(T, B, H)
    h = torch.randn(B, H) if cell else torch.randn(1, B, H)
    args = ((h, h),) if name == "LSTMCell" else (h,) if cell else ((h, h),) if name == "LSTM" else (h,)
    xg = x.clone().requires_grad_()
    first = lambda o: o[0] if isinstance(o, tuple) else o  # noqa: E731

    def infer(m):
        def f():
            with torch.no_grad():
                m(x, *args)
        return f

    def train(m):
        def f():
            first(m(xg, *args)).sum().backward()
        return f

    n = 300 if T == 1 else 30
    for mode, make in (("inference", infer), ("training", train)):
        ratios = {"old": [], "new": []}
        us = {"old": [], "new": []}
        for r in range(rounds):
            for v in (("old", "new") if r % 2 == 0 else ("new", "old")):
                variant(v)
                nn_t = t(make(ref), n)
                f_t = t(make(fm), n)
                ratios[v].append(nn_t / f_t)
                us[v].append(f_t)
        variant("new")
        mo, mn = statistics.median(ratios["old"]), statistics.median(ratios["new"])
        print(f"{name} H={H} B={B} T={T} {mode}: torch.nn/fused old {mo:.2f}x new {mn:.2f}x; fused us old "
              f"{statistics.median(us['old']):.1f} new {statistics.median(us['new']):.1f} "
              f"(new/old time {statistics.median(us['new']) / statistics.median(us['old']):.3f})", flush=True)
