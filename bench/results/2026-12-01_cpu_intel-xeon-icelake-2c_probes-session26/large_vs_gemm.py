# The large-shape forward (B=64, I=H=1024, one layer, inference) of each cell against the plain
# 2048^3 fp32 GEMM, timed in turns in one process (the matrix measures its GEMM once, at the
# start of a 15-minute run): each round the GEMM (bench.gemm_gflops) and then each cell's fused
# forward (median of 3 calls); GFLOP/s and the ratio to the GEMM of the same round.
#   python large_vs_gemm.py ROUNDS
import sys, statistics, time, torch, fused_rnn
from fused_rnn import bench
torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
B, H = 64, 1024
mods = {c: getattr(fused_rnn, c)(H, H) for c in ('LSTM', 'GRU', 'RNN')}
G = {'LSTM': 4, 'GRU': 3, 'RNN': 1}
xs = {T: torch.randn(T, B, H) for T in (50, 200)}
ratios = {}
with torch.no_grad():
    for m in mods.values():
        m(xs[50])
    for r in range(rounds):
        gemm = bench.gemm_gflops('cpu')
        line = ['round %d  GEMM %.0f' % (r, gemm)]
        for c, m in mods.items():
            for T, x in xs.items():
                ts = []
                for _ in range(3):
                    s = time.perf_counter(); m(x); ts.append(time.perf_counter() - s)
                gf = 2 * 2 * G[c] * H * H * B * T / statistics.median(ts) / 1e9
                ratios.setdefault((c, T), []).append(gf / gemm)
                line.append('%s T=%d %.0f (%.0f%%)' % (c, T, gf, 100 * gf / gemm))
        print('  '.join(line), flush=True)
for (c, T), v in ratios.items():
    print('%s T=%d: %.0f-%.0f%% of the same round\'s GEMM (median %.0f%%)' % (c, T, 100 * min(v), 100 * max(v), 100 * statistics.median(v)))
