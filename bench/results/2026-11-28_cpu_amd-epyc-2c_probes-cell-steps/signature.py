"""The autograd call of one RNNCell H=32 B=1 training forward, per torch version: torch's own
Function.apply, with and without the forward's signature kept (ops.keep_signature, now done at
import), and apply_function (which goes around the binding on torch <= 2.13). timeit, best of 5
means of 3000 calls, us. Run under each torch: python signature.py"""
import inspect, timeit, datetime
import torch, fused_rnn
from fused_rnn.ops import RNNTanhFunction, apply_function

H = 32
fm = fused_rnn.RNNCell(H, H)
x = torch.randn(1, 1, H, requires_grad=True)
h = torch.randn(1, H)
w = [fm.weight_ih, fm.weight_hh, fm.bias_ih, fm.bias_hh]
args = (x, h, *w, None, False, True)


def t(stmt):
    return min(timeit.repeat(stmt, number=3000, repeat=5, globals=globals())) / 3000 * 1e6


kept = RNNTanhFunction.forward.__signature__
print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
      f"Function.apply in {'C++' if not isinstance(torch.autograd.Function.__dict__['apply'], classmethod) else 'Python'}")
del RNNTanhFunction.forward.__signature__
print(f"Function.apply, signature computed each call: {t('RNNTanhFunction.apply(*args)'):.1f} us")
RNNTanhFunction.forward.__signature__ = kept
print(f"Function.apply, signature kept: {t('RNNTanhFunction.apply(*args)'):.1f} us")
print(f"apply_function (what the layers call): {t('apply_function(RNNTanhFunction, *args)'):.1f} us")
