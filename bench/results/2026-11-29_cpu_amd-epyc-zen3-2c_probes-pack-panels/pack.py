# The cost of packing panels: a one-step inference call with the panel cache off (packs W_ih and W_hh
# every call) against on (found), dots mode 'never' so panels are used at every B.
import torch, time, fused_rnn, sys
from fused_rnn import _C
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
_C._set_cpu_dots("never")
def t(fn, n):
    a = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - a) / n
for cell in ("LSTM", "GRU"):
    for H in (256, 512, 1024):
        f = getattr(fused_rnn, cell)(H, H); x = torch.randn(1, 8, H)
        def run():
            with torch.no_grad(): f(x)
        on, off = [], []
        for _ in range(5):
            _C._set_cpu_panel_cache(True); run(); on.append(t(run, 20))
            _C._set_cpu_panel_cache(False); off.append(t(run, 20))
        _C._set_cpu_panel_cache(True)
        mb = 2 * f.weight_hh_l0.numel() * 4 / 2**20
        d = min(off) - min(on)
        print(f"{cell} H={H}: found {min(on)*1e6:.0f} us, packed {min(off)*1e6:.0f} us: packing {d*1e6:.0f} us for {mb:.0f} MB ({mb/1024/d:.2f} GB/s)", flush=True)
