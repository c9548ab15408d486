# The thread team's zigzag item order (step_team.h) on and off in one process: torch.nn, fused
# (off), a torch.nn copy, fused (on) interleaved as the matrix harness interleaves its runs;
# medians, ms a call, at least 15 rounds and 1.5 s of each.
#   python zigzag_ab.py MODE CELL:B:H:T [...]     MODE: inference | training
import torch, sys, fused_rnn, time, copy, statistics
from fused_rnn import _C
torch.set_num_threads(2)
mode = sys.argv[1]
for spec in sys.argv[2:]:
    cell, B, H, T = spec.split(':'); B, H, T = int(B), int(H), int(T)
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H); ours = getattr(fused_rnn, cell)(H, H); ours.load_state_dict(ref.state_dict())
    again = copy.deepcopy(ref)
    x = torch.randn(T, B, H, requires_grad=mode == 'training')
    def call(m):
        if mode == 'inference':
            with torch.no_grad():
                m(x)
        else:
            m(x)[0].sum().backward()
    runs = [('torch', ref, None), ('off', ours, False), ('again', again, None), ('on', ours, True)]
    times = {k: [] for k, _, _ in runs}
    for k, m, z in runs:
        call(m)
    started = time.perf_counter()
    while len(times['on']) < 15 or time.perf_counter() - started < 6:
        for k, m, z in runs:
            if z is not None:
                _C._set_cpu_zigzag(z)
            s = time.perf_counter(); call(m); times[k].append(time.perf_counter() - s)
    _C._set_cpu_zigzag(True)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print('%s %s B=%d H=%d T=%d  torch %.3f  off %.3f  on %.3f ms | speedup off %.2fx on %.2fx  on/off %.3fx  A/A %.2f  (%d rounds)' % (
        mode, cell, B, H, T, med['torch'], med['off'], med['on'], med['torch'] / med['off'], med['torch'] / med['on'],
        med['off'] / med['on'], med['torch'] / med['again'], len(times['on'])), flush=True)
