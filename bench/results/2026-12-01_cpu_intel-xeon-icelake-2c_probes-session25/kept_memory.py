# Resident memory the panel cache keeps: RSS after two inference calls (B=1, T=200, panels path)
# minus RSS before the first, for an LSTM / GRU of 2 layers; weights' own bytes printed alongside.
import torch, sys, fused_rnn, gc
torch.set_num_threads(2)
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2**20
cell = sys.argv[1]; H = int(sys.argv[2])
m = getattr(fused_rnn, cell)(H, H, 2)
x = torch.randn(200, 1, H)
wbytes = sum(p.numel() * 4 for n, p in m.named_parameters() if 'weight' in n) / 2**20
with torch.no_grad():
    m(x[:1]); gc.collect()
    before = rss()
    m(x); m(x); gc.collect()
    after = rss()
print('%s H=%d L=2: weights %.1f MiB, resident growth over two T=200 B=1 inference calls %.1f MiB, panels found %d' % (
    cell, H, wbytes, after - before, fused_rnn._C._cpu_cache_calls()['panels_found']))
