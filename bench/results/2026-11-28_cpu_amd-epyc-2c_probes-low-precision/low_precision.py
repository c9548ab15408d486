"""Probe: bfloat16 and float16 models on the CPU, fused_rnn (which runs them through its float32
kernels: inputs and weights cast up, results cast back) against torch.nn (for bfloat16 LSTM,
oneDNN's bf16 kernel where the CPU has AVX512-BF16/AMX; otherwise torch's own loop).
Alternating single calls, 7 pairs after 2 warm-up pairs, medians, 2 threads."""
import statistics
import time

import torch

import fused_rnn

torch.set_num_threads(2)
torch.manual_seed(0)
print("torch", torch.__version__, "| mkldnn bf16 supported:", torch.ops.mkldnn._is_mkldnn_bf16_supported(),
      "| fp16:", torch.ops.mkldnn._is_mkldnn_fp16_supported(), "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
cases = [(dt, cell, shape) for dt in (torch.bfloat16, torch.float16) for cell in ("LSTM", "GRU", "RNN")
         for shape in ((1, 256, 200), (8, 512, 50), (64, 256, 50))]
cases += [(torch.bfloat16, "LSTM", shape) for shape in ((1, 128, 50), (1, 512, 50), (1, 1024, 50), (2, 256, 100),
                                                        (4, 256, 100), (4, 512, 50), (8, 128, 100), (16, 256, 50))]
for dt, cell, (B, H, T) in cases:
    for mode in ("inference", "training"):
        ref = getattr(torch.nn, cell)(H, H).to(dt)
        f = getattr(fused_rnn, cell)(H, H).to(dt)
        f.load_state_dict(ref.state_dict())
        x = torch.randn(T, B, H, dtype=dt, requires_grad=mode == "training")

        def run(m):
            with torch.set_grad_enabled(mode == "training"):
                o, _ = m(x)
                if mode == "training":
                    o.float().sum().backward()
        a, b = [], []
        for _ in range(2):
            run(ref)
            run(f)
        for _ in range(7):
            t0 = time.perf_counter()
            run(ref)
            a.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run(f)
            b.append(time.perf_counter() - t0)
        ta, tb = statistics.median(a), statistics.median(b)
        print(f"{str(dt)[6:]:8s} {cell:4s} B={B:<2d} H={H:<4d} T={T:<3d} {mode:9s} torch.nn {ta * 1e3:8.2f} ms  "
              f"fused {tb * 1e3:8.2f} ms  speedup {ta / tb:5.2f}x")
