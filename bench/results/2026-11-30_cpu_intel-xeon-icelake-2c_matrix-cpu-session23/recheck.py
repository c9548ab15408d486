# After the matrix: the plain GEMM again (the run's was timed in a slow stretch), the one case
# under 0.9x (GRU B=64 I=H=1024 T=200, two layers, inference), and the large-shape forwards.
import os, torch, fused_rnn.bench as b
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(2)
print('GEMM', round(b.gemm_gflops('cpu')), 'GFLOP/s', flush=True)
for cell, T, L in (('gru', 200, 2), ('gru', 200, 2), ('lstm', 50, 1), ('gru', 50, 1), ('rnn', 50, 1)):
    r = b.run_case(b.Case(cell, 64, 1024, 1024, T, layers=L, mode='inference'), 'cpu', aa=True)
    print(f"{cell} B=64 I=H=1024 T={T} L={L} inference: torch {r['torch_ms']:.1f} ms fused {r['fused_ms']:.1f} ms "
          f"{r['speedup']:.2f}x fused {r['fused_gflops']:.0f} GFLOP/s A/A {r['aa']:.2f}", flush=True)
print('GEMM', round(b.gemm_gflops('cpu')), 'GFLOP/s', flush=True)
