"""Peak resident-set rise of one bf16 CPU training step (after a warm-up step on a tiny input),
each side in a fresh process, as bench/memory.py measures float32: python mem_bf16.py SIDE B H T."""
import resource, sys
import torch
import fused_rnn
side, B, H, T = sys.argv[1], *map(int, sys.argv[2:5])
torch.set_num_threads(2)
lib = torch.nn if side == "torch" else fused_rnn
model = lib.LSTM(H, H).bfloat16()
x = torch.randn(T, B, H, dtype=torch.bfloat16, requires_grad=True)
warm = torch.randn(2, 1, H, dtype=torch.bfloat16, requires_grad=True)
model(warm)[0].float().sum().backward()
model.zero_grad(set_to_none=True)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
base = rss()
out, _ = model(x)
out.float().sum().backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{side} B={B} H={H} T={T}: peak rise {(peak - base) / 1024:.1f} MiB, resident after {(rss() - base) / 1024:.1f} MiB")
