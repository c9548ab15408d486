"""Probe: bfloat16 weights in CPU inference read as stored (converted to float32 as they are
loaded) against reading their kept float32 casts, interleaved in one process through
_C._set_cpu_16bit_weights, with torch.nn (oneDNN's bf16 LSTM) timed in the same loop;
15 rounds, medians, 2 threads."""
import statistics
import time

import torch

import fused_rnn

torch.set_num_threads(2)
C = fused_rnn._C
print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for cell, B, H, T in (("LSTM", 1, 128, 50), ("LSTM", 1, 256, 200), ("LSTM", 1, 512, 50), ("LSTM", 1, 1024, 50),
                      ("LSTM", 4, 256, 100), ("LSTM", 8, 512, 50), ("LSTM", 64, 256, 50), ("GRU", 1, 256, 200)):
    ref = getattr(torch.nn, cell)(H, H).bfloat16()
    f = getattr(fused_rnn, cell)(H, H).bfloat16()
    f.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, H, dtype=torch.bfloat16)
    casts, narrow, nn_times = [], [], []
    with torch.no_grad():
        for _ in range(3):
            f(x)
            ref(x)
        for _ in range(15):
            for times, on in ((casts, False), (narrow, True)):
                C._set_cpu_16bit_weights(on)
                t0 = time.perf_counter()
                f(x)
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref(x)
            nn_times.append(time.perf_counter() - t0)
    C._set_cpu_16bit_weights(True)
    a, b, n = (statistics.median(v) * 1e3 for v in (casts, narrow, nn_times))
    print(f"bfloat16 {cell} B={B} H={H} T={T} inference: torch.nn {n:.2f} ms | fused, fp32 casts {a:.2f} ms | "
          f"fused, bf16 as stored {b:.2f} ms | gain {a / b:.2f}x | speedup over torch.nn {n / b:.2f}x")
