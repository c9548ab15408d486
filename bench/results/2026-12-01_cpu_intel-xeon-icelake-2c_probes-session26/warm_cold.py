# Fused B=1 inference calls back to back (warm) and each after a torch.nn call (cold), medians
# of per-call ms, at several T: the fixed part of a call is the intercept of ms against T.
#   python warm_cold.py CELL H T[,T...] [L]
import torch, sys, fused_rnn, time, statistics
torch.set_num_threads(2)
cell, H = sys.argv[1], int(sys.argv[2]); Ts = [int(t) for t in sys.argv[3].split(',')]; L = int(sys.argv[4]) if len(sys.argv) > 4 else 1
torch.manual_seed(0)
ref = getattr(torch.nn, cell)(H, H, L); ours = getattr(fused_rnn, cell)(H, H, L); ours.load_state_dict(ref.state_dict())
def t(m, x):
    s = time.perf_counter(); m(x); return time.perf_counter() - s
with torch.no_grad():
    rows = []
    for T in Ts:
        x = torch.randn(T, 1, H)
        ours(x); ref(x)
        warm, cold, tor = [], [], []
        for r in range(200):
            warm.append(t(ours, x)); tor.append(t(ref, x)); cold.append(t(ours, x))
        rows.append((T, *(statistics.median(v) * 1e3 for v in (warm, cold, tor))))
        print('%s H=%d T=%d L=%d  fused warm %.3f  fused after torch.nn %.3f  torch.nn %.3f ms' % (cell, H, T, L, *rows[-1][1:]), flush=True)
    if len(rows) > 1:
        (t0, *a), (t1, *b) = rows[0], rows[-1]
        for name, i in (('warm', 0), ('after torch.nn', 1), ('torch.nn', 2)):
            slope = (b[i] - a[i]) / (t1 - t0)
            print('  %s: %.2f us a step, %.3f ms a call fixed' % (name, slope * 1e3, a[i] - slope * t0))
