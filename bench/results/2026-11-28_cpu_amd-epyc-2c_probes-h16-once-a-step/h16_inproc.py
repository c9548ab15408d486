"""In one process: bf16 inference with h rounded to bf16 once a step (epilogue) against rounded by
every tile's product (FUSED_RNN_TMP_NO_H16 set, a temporary switch of the measured build), interleaved
call by call; 25 rounds, medians and min."""
import os, statistics, time
import torch, fused_rnn
torch.set_num_threads(2)
print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for cell, B, H, T in (("LSTM", 64, 256, 50), ("LSTM", 16, 256, 50), ("LSTM", 8, 512, 50), ("LSTM", 4, 256, 50),
                      ("LSTM", 1, 256, 100), ("GRU", 64, 256, 50), ("RNN", 64, 512, 50)):
    torch.manual_seed(0)
    f = getattr(fused_rnn, cell)(H, H).bfloat16(); x = torch.randn(T, B, H, dtype=torch.bfloat16)
    r = {"once": [], "per tile": []}
    with torch.no_grad():
        for _ in range(3): f(x)
        for _ in range(25):
            for k in ("per tile", "once"):
                if k == "per tile": os.environ["FUSED_RNN_TMP_NO_H16"] = "1"
                else: os.environ.pop("FUSED_RNN_TMP_NO_H16", None)
                t0 = time.perf_counter(); f(x); r[k].append(time.perf_counter() - t0)
    os.environ.pop("FUSED_RNN_TMP_NO_H16", None)
    a, b = statistics.median(r["per tile"]), statistics.median(r["once"])
    print(f"bf16 {cell} B={B} H={H} T={T} inference: per tile {a*1e3:.3f} ms (min {min(r['per tile'])*1e3:.3f}) | once a step {b*1e3:.3f} ms (min {min(r['once'])*1e3:.3f}) | {a/b:.2f}x")
