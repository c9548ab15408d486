"""perf profile input: bf16 LSTM inference, B=64 T=200 I=H=argv[1], looped for 8 s on 2 threads."""
import torch, fused_rnn, sys, time
torch.set_num_threads(2)
H = int(sys.argv[1]); B = 64; T = 200
m = fused_rnn.LSTM(H, H).bfloat16(); x = torch.randn(T, B, H).bfloat16()
with torch.no_grad():
    for _ in range(3): m(x)
    s = time.perf_counter(); n = 0
    while time.perf_counter() - s < 8: m(x); n += 1
print(n, (time.perf_counter() - s) / n * 1e3, "ms")
