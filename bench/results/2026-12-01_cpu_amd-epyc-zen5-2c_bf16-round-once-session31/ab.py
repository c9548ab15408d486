"""A/B in one process: bf16 dot-product layers with the operand every tile multiplies rounded
once by the team (_set_cpu_bf16_round_once(True), the default) against each tile rounding it
again (False). Alternating calls, 15 rounds each, medians; one layer, I = H, bfloat16 module."""
import platform, statistics, sys, time
import torch, fused_rnn
torch.set_num_threads(2)
C = fused_rnn._C
print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; torch {torch.__version__}; Python {platform.python_version()}; "
      f"fused_rnn {fused_rnn.build_info().get('version', '?')}; threads 2; cpu_bf16_dot {fused_rnn.build_info()['cpu_bf16_dot']}")
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        print("#", line.strip()); break
print("cell,H,B,T,mode,once_ms,per_tile_ms,speedup")
for mode in ("LSTM", "GRU"):
    for H in (256, 512, 1024):
        for B in (8, 64):
            T = 100 if H < 1024 else 50
            torch.manual_seed(0)
            m = getattr(fused_rnn, mode)(H, H).bfloat16(); x = torch.randn(T, B, H).bfloat16()
            def inf():
                with torch.no_grad(): m(x)
            def train():
                m.zero_grad(); m(x)[0].float().sum().backward()
            for name, f in (("inference", inf), ("training", train)):
                ts = {True: [], False: []}
                for rep in range(15):
                    for on in ((True, False) if rep % 2 else (False, True)):
                        C._set_cpu_bf16_round_once(on); f()
                        s = time.perf_counter(); f(); ts[on].append(time.perf_counter() - s)
                C._set_cpu_bf16_round_once(True)
                a, b = statistics.median(ts[True]) * 1e3, statistics.median(ts[False]) * 1e3
                print(f"{mode},{H},{B},{T},{name},{a:.3f},{b:.3f},{b/a:.3f}", flush=True)
