"""Profile target: bf16 LSTM inference B=64 H=256 T=50, 200 calls (run under perf record -g)."""
import torch, fused_rnn, time, sys
torch.set_num_threads(2)
B,H,T=int(sys.argv[1]),int(sys.argv[2]),50
f=fused_rnn.LSTM(H,H).bfloat16()
x=torch.randn(T,B,H,dtype=torch.bfloat16)
with torch.no_grad():
    for _ in range(5): f(x)
    t0=time.perf_counter()
    for _ in range(200): f(x)
    print((time.perf_counter()-t0)/200*1e3, "ms")
