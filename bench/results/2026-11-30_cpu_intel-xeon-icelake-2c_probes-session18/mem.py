import json, resource, sys, os
import torch, fused_rnn
cls, B, I, H, T, side = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
torch.set_num_threads(2)
lib = torch.nn if side == "torch" else fused_rnn
model = getattr(lib, cls)(I, H, bidirectional=True)
x = torch.randn(T, B, I, requires_grad=True)
warm = torch.randn(2, 1, I, requires_grad=True)
out, _ = model(warm); out.sum().backward(); model.zero_grad(set_to_none=True)
def rss():
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def hwm():
    with open("/proc/self/status") as f: return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
with open("/proc/self/clear_refs", "w") as f: f.write("5")
base = rss()
out, _ = model(x); fwd = hwm() - base
out.sum().backward(); total = hwm() - base
print(json.dumps({"fwd": round(fwd, 1), "total": round(total, 1)}))
