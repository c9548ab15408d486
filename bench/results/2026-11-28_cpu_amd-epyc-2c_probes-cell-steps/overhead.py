"""Where an RNNCell H=32 B=1 step's time goes (timeit, best of 5 means of 3000 calls, us):
the module, the ops alone, and torch.nn. python overhead.py"""
import timeit, datetime
import torch, fused_rnn
from fused_rnn.ops import RNNTanhFunction, apply_function

torch.set_num_threads(2)
ops = torch.ops.fused_rnn
H, B = 32, 1
ref = torch.nn.RNNCell(H, H)
fm = fused_rnn.RNNCell(H, H)
fm.load_state_dict(ref.state_dict())
x = torch.randn(B, H)
h = torch.randn(B, H)
xg = x.clone().requires_grad_()
w = [fm.weight_ih, fm.weight_hh, fm.bias_ih, fm.bias_hh]
wd = [p.detach() for p in w]
x3 = xg.unsqueeze(0)
o, hn, ws = ops.rnn_tanh_forward(x3.detach(), h, *wd, None, False, True)
go = torch.ones_like(o)
z = torch.zeros_like(hn)


def t(s, n=3000):
    return min(timeit.repeat(s, number=n, repeat=5, globals=globals())) / n * 1e6


print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
      f"fused_rnn from {fused_rnn.__file__}")
for label, stmt in [
    ("torch.nn step, training (fwd + .sum().backward())", "ref(xg, h).sum().backward()"),
    ("fused step, training", "fm(xg, h).sum().backward()"),
    ("torch.nn forward (grad on)", "ref(xg, h)"),
    ("fused forward (grad on)", "fm(xg, h)"),
    ("  of which apply_function(RNNTanhFunction, ...)", "apply_function(RNNTanhFunction, x3, h, *w, None, False, True)"),
    ("  of which RNNTanhFunction.apply (torch's own, for comparison)", "RNNTanhFunction.apply(x3, h, *w, None, False, True)"),
    ("  of which the forward op alone", "ops.rnn_tanh_forward(x3.detach(), h, *wd, None, False, True)"),
    ("the backward op alone", "ops.rnn_tanh_backward(go, z, x3.detach(), h, *wd, None, o, ws, False)"),
]:
    print(f"{label}: {t(stmt):.1f} us")
