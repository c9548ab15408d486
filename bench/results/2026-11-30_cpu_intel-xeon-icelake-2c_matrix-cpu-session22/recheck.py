# The run's GRU B=64 I=H=1024 T=50 forward, and the plain GEMM, timed again after the matrix.
import os, torch, fused_rnn.bench as b
os.sched_setaffinity(0, {0, 1}); torch.set_num_threads(2)
print('GEMM', round(b.gemm_gflops('cpu')), 'GFLOP/s')
for T in (50, 200):
    for rep in range(2):
        r = b.run_case(b.Case('gru', 64, 1024, 1024, T, mode='inference'), 'cpu', aa=True)
        print(f"gru B=64 I=H=1024 T={T} inference: torch {r['torch_ms']:.1f} ms fused {r['fused_ms']:.1f} ms "
              f"{r['speedup']:.2f}x fused {r['fused_gflops']:.0f} GFLOP/s A/A {r['aa']:.2f}")
