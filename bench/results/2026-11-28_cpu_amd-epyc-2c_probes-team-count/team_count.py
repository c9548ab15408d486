"""Probe: the CPU step team's barrier count updated once per item (the old way, selected by
PROBE_PER_ITEM_COUNT in a temporary build) against once per thread and step, timed
interleaved in one process (fused LSTM forward, no_grad, 2 threads, 40 pairs, medians)."""
import os
import statistics
import time

import torch

import fused_rnn

torch.set_num_threads(2)
torch.manual_seed(0)
print(fused_rnn.build_info()["built_with_torch"], fused_rnn.build_info()["cpu_capability"], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for H, T, B in [(128, 200, 1), (256, 50, 1), (256, 200, 1), (512, 200, 1), (1024, 50, 1), (256, 200, 8), (256, 50, 64)]:
    f = fused_rnn.LSTM(H, H)
    x = torch.randn(T, B, H)
    per_item, per_thread = [], []
    with torch.no_grad():
        for _ in range(3):
            f(x)
        for _ in range(40):
            for times, old in ((per_item, True), (per_thread, False)):
                if old:
                    os.environ["PROBE_PER_ITEM_COUNT"] = "1"
                else:
                    os.environ.pop("PROBE_PER_ITEM_COUNT", None)
                t0 = time.perf_counter()
                f(x)
                times.append(time.perf_counter() - t0)
    os.environ.pop("PROBE_PER_ITEM_COUNT", None)
    a, b = statistics.median(per_item), statistics.median(per_thread)
    print(f"LSTM B={B} H={H} T={T}: per item {a * 1e3:.3f} ms, per thread {b * 1e3:.3f} ms, ratio {a / b:.3f}")
