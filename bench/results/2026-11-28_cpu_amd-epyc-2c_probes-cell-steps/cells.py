"""One step of each cell (and two small layers) against torch.nn in the same process:
inference (no_grad) and a training step (forward, .sum().backward() into x and the
parameters), medians over rounds of timeit means. Run once per build, alternating:
  PYTHONPATH=<tree>/python python cells.py LABEL"""
import sys, timeit, statistics, datetime
import torch, fused_rnn

torch.set_num_threads(2)
label = sys.argv[1]
print(f"# {label}: fused_rnn from {fused_rnn.__file__}, torch {torch.__version__}, 2 threads, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def t(f, n):
    return statistics.median(timeit.repeat(f, number=n, repeat=7)) / n * 1e6


cases = [(name, H, B) for H in (32, 128, 512) for B in (1, 16) for name in ("LSTMCell", "GRUCell", "RNNCell")]
cases += [("LSTM", 128, 1), ("GRU", 128, 1)]  # T=20 layers
for name, H, B in cases:
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(H, H)
    fm = getattr(fused_rnn, name)(H, H)
    fm.load_state_dict(ref.state_dict())
    layer = not name.endswith("Cell")
    x = torch.randn(20, B, H) if layer else torch.randn(B, H)
    h = torch.randn(B, H)
    args = () if layer else (((h, h),) if name == "LSTMCell" else (h,))
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

    n = 2000 if H < 512 else 200
    r = {k: t(f, n if "inf" in k else n // 4) for k, f in
         (("nn_inf", infer(ref)), ("fused_inf", infer(fm)), ("nn_train", train(ref)), ("fused_train", train(fm)))}
    print(f"{name} H={H} B={B}{' T=20' if layer else ''}: inference nn {r['nn_inf']:.1f} fused {r['fused_inf']:.1f} us "
          f"({r['nn_inf'] / r['fused_inf']:.2f}x); training nn {r['nn_train']:.1f} fused {r['fused_train']:.1f} us "
          f"({r['nn_train'] / r['fused_train']:.2f}x)", flush=True)
