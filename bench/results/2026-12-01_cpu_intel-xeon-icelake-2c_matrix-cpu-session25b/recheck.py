# The one case under 0.9x in this run, timed again through bench.run_case (the harness), 3 times.
import torch, fused_rnn
from fused_rnn.bench import Case, run_case
torch.set_num_threads(2)
for i in range(3):
    r = run_case(Case('lstm', 64, 1024, 1024, 50, 2, 1, 'float32', 'training'), 'cpu', aa=True)
    print('lstm B=64 I=H=1024 T=50 L=2 training: torch %.1f ms fused %.1f ms speedup %.2fx A/A %.2fx spreads %.1f/%.1f%% reps %d' % (
        r['torch_ms'], r['fused_ms'], r['speedup'], r['aa'], r['torch_spread_pct'], r['fused_spread_pct'], r['reps']), flush=True)
