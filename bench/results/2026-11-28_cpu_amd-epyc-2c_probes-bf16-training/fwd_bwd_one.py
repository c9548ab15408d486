"""One process of the per-step probe: bf16 training forward and backward timed apart (medians of 21)
for RNN, GRU and LSTM; run in alternating processes for two builds (see per_step README section)."""
import statistics, time, sys
import torch, fused_rnn
torch.set_num_threads(2)
for cell, B, H in (("RNN", 16, 256), ("GRU", 16, 256), ("RNN", 64, 512), ("LSTM", 16, 256)):
    torch.manual_seed(0)
    f = getattr(fused_rnn, cell)(H, H).bfloat16(); x = torch.randn(50, B, H, dtype=torch.bfloat16)
    y = f(x)[0].float()
    g = torch.randn_like(y)
    def fwd():
        f.zero_grad(); return f(x)[0].float()
    for _ in range(3): fwd().backward(g)
    tf, tb = [], []
    for _ in range(21):
        t0 = time.perf_counter(); out = fwd(); t1 = time.perf_counter(); out.backward(g); t2 = time.perf_counter()
        tf.append(t1 - t0); tb.append(t2 - t1)
    print(f"{cell} B={B} H={H}\t{statistics.median(tf)*1e3:.3f}\t{statistics.median(tb)*1e3:.3f}", flush=True)
