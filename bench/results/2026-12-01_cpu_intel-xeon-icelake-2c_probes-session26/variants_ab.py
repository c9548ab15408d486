# Switch variants of the fused CPU path in one process: torch.nn, then each variant, a torch.nn
# copy between them, interleaved as the matrix harness interleaves its runs; medians, ms a call,
# at least 15 rounds and 6 s. The variants' order rotates from round to round, so that each
# follows torch.nn's own call (rather than its copy's) equally often: variants_ab_v1.py, which
# kept one order, gave its first variant a bias of a few percent at B=1 H=256.
#   python variants_ab.py MODE VARIANTS CELL:B:H:T[:L] [...]
# MODE: inference | training. VARIANTS: comma-separated NAME=switch/value;switch/value or NAME= (defaults),
# switches: dots (auto|always|never), cache (0|1), zigzag (0|1), check (old|new: a probe build's switch,
# probe_check_old.diff).
import torch, sys, fused_rnn, time, copy, statistics
from fused_rnn import _C
torch.set_num_threads(2)
mode = sys.argv[1]
setters = {'dots': lambda v: _C._set_cpu_dots(v), 'cache': lambda v: _C._set_cpu_panel_cache(v == '1'),
           'zigzag': lambda v: _C._set_cpu_zigzag(v == '1'),
           'check': lambda v: _C._set_cpu_compare_chunk(-2 if v == 'old' else -1)}
defaults = {'dots': 'auto', 'cache': '1', 'zigzag': '1', 'check': 'new'}
variants = []
for v in sys.argv[2].split(','):
    name, _, sw = v.partition('=')
    s = dict(defaults)
    for kv in filter(None, sw.split(';')):
        k, val = kv.split('/'); s[k] = val
    variants.append((name, s))
def apply(s):
    for k, val in s.items():
        setters[k](val)
for spec in sys.argv[3:]:
    f = spec.split(':'); cell = f[0]; B, H, T = int(f[1]), int(f[2]), int(f[3]); L = int(f[4]) if len(f) > 4 else 1
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(H, H, L); ours = getattr(fused_rnn, cell)(H, H, L); ours.load_state_dict(ref.state_dict())
    again = copy.deepcopy(ref)
    x = torch.randn(T, B, H, requires_grad=mode == 'training')
    def call(m):
        if mode == 'inference':
            with torch.no_grad():
                m(x)
        else:
            m(x)[0].sum().backward()
    def order(r):
        runs = [('torch', ref, None)]
        for name, s in variants[r % len(variants):] + variants[:r % len(variants)]:
            runs += [(name, ours, s), ('again', again, None)]
        return runs
    times = {k: [] for k, _, _ in order(0)}
    for k, m, s in order(0):
        if s is not None: apply(s)
        call(m)
    started = time.perf_counter()
    while len(times['torch']) < 15 or time.perf_counter() - started < 6:
        for k, m, s in order(len(times['torch'])):
            if s is not None: apply(s)
            t0 = time.perf_counter(); call(m); times[k].append(time.perf_counter() - t0)
    apply(defaults)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print('%s %s B=%d H=%d T=%d L=%d  torch %.3f ms  %s | A/A %.2f (%d rounds)' % (
        mode, cell, B, H, T, L, med['torch'],
        '  '.join('%s %.3f (%.2fx)' % (n, med[n], med['torch'] / med[n]) for n, _ in variants),
        med['torch'] / med['again'], len(times['torch'])), flush=True)
