"""Same-process A/B: a training step whose backward consumes the workspace (backward()) against
one that keeps it (backward(retain_graph=True)), alternating, medians of rounds."""
import statistics, sys, time
import torch, fused_rnn
torch.set_num_threads(2)
SHAPES = [("LSTM", 64, 256, 50, False), ("GRU", 64, 256, 50, False), ("LSTM", 64, 1024, 50, False),
          ("GRU", 64, 1024, 50, False), ("LSTM", 8, 512, 200, False), ("GRU", 8, 512, 200, False),
          ("LSTM", 1, 256, 200, False), ("GRU", 1, 256, 200, True), ("LSTM", 16, 512, 100, True)]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
for cls, B, H, T, bidir in SHAPES:
    m = getattr(fused_rnn, cls)(H, H, bidirectional=bidir)
    x = torch.randn(T, B, H, requires_grad=True)
    def step(retain):
        out, _ = m(x)
        out.sum().backward(retain_graph=retain)
    for r in (False, True):
        step(r)
    # reps so a side takes ~0.2 s
    t0 = time.perf_counter(); step(False); one = time.perf_counter() - t0
    reps = max(1, int(0.2 / one))
    times = {False: [], True: []}
    for k in range(rounds):
        for r in ((False, True) if k % 2 == 0 else (True, False)):
            t0 = time.perf_counter()
            for _ in range(reps):
                step(r)
            times[r].append((time.perf_counter() - t0) / reps)
    ratios = sorted(a / b for a, b in zip(times[True], times[False]))
    print(f"{cls:4s} B={B:2d} H={H:4d} T={T:3d} {'bidir' if bidir else '     '}  consumed {statistics.median(times[False])*1e3:8.2f} ms"
          f"  kept {statistics.median(times[True])*1e3:8.2f} ms  kept/consumed median {statistics.median(ratios):.3f}"
          f" (range {ratios[0]:.3f}-{ratios[-1]:.3f})", flush=True)
