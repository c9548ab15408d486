"""One training case of ab.py again, more rounds (argv: cell H B T rounds); prints every time."""
import statistics, time, torch, fused_rnn, sys
torch.set_num_threads(2)
C = fused_rnn._C
mode, H, B, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
m = getattr(fused_rnn, mode)(H, H).bfloat16(); x = torch.randn(T, B, H).bfloat16()
def train():
    m.zero_grad(); m(x)[0].float().sum().backward()
ts = {True: [], False: []}
for rep in range(int(sys.argv[5])):
    for on in ((True, False) if rep % 2 else (False, True)):
        C._set_cpu_bf16_round_once(on); train()
        s = time.perf_counter(); train(); ts[on].append(time.perf_counter() - s)
for on in (True, False): print(on, [round(t*1e3,1) for t in ts[on]])
a, b = statistics.median(ts[True]) * 1e3, statistics.median(ts[False]) * 1e3
print(f"once {a:.2f} per tile {b:.2f} speedup {b/a:.3f}")
