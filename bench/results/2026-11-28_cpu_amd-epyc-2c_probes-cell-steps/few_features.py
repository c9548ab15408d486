"""Training steps of layers over a few input features (I = 2, as the adding problem and
small forecasters have), B = 64, T = 40, against torch.nn in the same process: forward,
.sum().backward() into the input and the parameters; inference too. Medians of 30 calls a
round, 3 rounds, min over rounds. Run once per build, alternating:
  PYTHONPATH=<tree>/python python few_features.py LABEL"""
import sys, time, statistics, datetime
import torch, fused_rnn

torch.set_num_threads(2)
print(f"# {sys.argv[1]}: fused_rnn from {fused_rnn.__file__}, torch {torch.__version__}, 2 threads, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def med(f, n=30):
    for _ in range(5):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


for cell in ("LSTM", "GRU", "RNN"):
    for H in (32, 64, 128):
        torch.manual_seed(0)
        ref = getattr(torch.nn, cell)(2, H, batch_first=True)
        fm = getattr(fused_rnn, cell)(2, H, batch_first=True)
        fm.load_state_dict(ref.state_dict())
        x = torch.randn(64, 40, 2, requires_grad=True)

        def train(m):
            def f():
                o, _ = m(x)
                o.sum().backward()
            return f

        def infer(m):
            def f():
                with torch.no_grad():
                    m(x)
            return f

        r = {}
        for _ in range(3):
            for k, f in (("nn_train", train(ref)), ("fused_train", train(fm)), ("nn_inf", infer(ref)),
                         ("fused_inf", infer(fm))):
                r.setdefault(k, []).append(med(f))
        m = {k: min(v) for k, v in r.items()}
        print(f"{cell} I=2 H={H} B=64 T=40: training nn {m['nn_train']:.2f} fused {m['fused_train']:.2f} ms "
              f"({m['nn_train'] / m['fused_train']:.2f}x); inference nn {m['nn_inf']:.2f} fused {m['fused_inf']:.2f} ms "
              f"({m['nn_inf'] / m['fused_inf']:.2f}x)", flush=True)
