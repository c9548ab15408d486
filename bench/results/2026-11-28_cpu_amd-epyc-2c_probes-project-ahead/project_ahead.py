"""Probe: a one-row forward that computes the next 16-step chunk's input projection inside its
steps (project_ahead.patch: a unit of 4 rows x one panel vector per tile and step, in the same
loop as the step's W_hh product) against projecting each chunk before its steps. Timed
interleaved in one process through the patch's switch, 30 pairs a case, medians, 2 threads."""
import statistics
import time

import torch

import fused_rnn

torch.set_num_threads(2)
torch.manual_seed(0)
C = fused_rnn._C
print(fused_rnn.build_info()["built_with_torch"], fused_rnn.build_info()["cpu_capability"], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for cell, H, T in [("LSTM", 128, 50), ("LSTM", 128, 200), ("LSTM", 256, 50), ("LSTM", 256, 200), ("LSTM", 512, 50),
                   ("LSTM", 512, 200), ("GRU", 256, 200), ("RNN", 256, 200)]:
    f = getattr(fused_rnn, cell)(H, H)
    x = torch.randn(T, 1, H)
    for train in (False, True):
        xg = x.clone().requires_grad_(train)

        def run():
            with torch.set_grad_enabled(train):
                o, _ = f(xg)
                if train:
                    o.sum().backward()
        for _ in range(3):
            run()
        before, ahead = [], []
        for _ in range(30):
            for times, on in ((before, False), (ahead, True)):
                C._set_cpu_project_ahead(on)
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
        a, b = statistics.median(before), statistics.median(ahead)
        print(f"{cell} B=1 H={H} T={T} {'training ' if train else 'inference'}: before {a * 1e3:.3f} ms, "
              f"ahead {b * 1e3:.3f} ms, ratio {a / b:.3f}")
C._set_cpu_project_ahead(True)
