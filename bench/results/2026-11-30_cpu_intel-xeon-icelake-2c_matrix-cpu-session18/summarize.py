"""The README's table from cpu.json: python summarize.py > summary.txt"""
import json, math
rows = json.load(open("cpu.json"))["rows"]
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
print("| cell | mode | geomean | min | max | B=1 min | by B = 1 / 8 / 64 | below 0.9x |")
for cell in ("lstm", "gru", "rnn"):
    for mode in ("inference", "training"):
        r = [x for x in rows if x["cell"] == cell and x["mode"] == mode]
        s = [x["speedup"] for x in r]
        byb = [gm([x["speedup"] for x in r if x["B"] == b]) for b in (1, 8, 64)]
        b1 = min(x["speedup"] for x in r if x["B"] == 1)
        print(f"| {cell} | {mode} | {gm(s):.2f}x | {min(s):.2f}x | {max(s):.2f}x | {b1:.2f}x | "
              f"{byb[0]:.2f} / {byb[1]:.2f} / {byb[2]:.2f} | {sum(v < 0.9 for v in s)} of {len(s)} |")
aa = [x["aa"] for x in rows]
print(f"A/A range {min(aa):.2f}x to {max(aa):.2f}x, off by >10%: {sum(abs(a - 1) > 0.1 for a in aa)} of {len(aa)}")
print("below 0.9x:")
for x in rows:
    if x["speedup"] < 0.9:
        print(f"  {x['cell']} {x['shape']} {x['mode']} {x['speedup']:.2f}x spreads {x['torch_spread_pct']:.0f}/"
              f"{x['fused_spread_pct']:.0f}% A/A {x['aa']:.2f}x")
print("LSTM B=1 inference:")
for x in rows:
    if x["cell"] == "lstm" and x["B"] == 1 and x["mode"] == "inference":
        print(f"  {x['shape']} {x['speedup']:.2f}x A/A {x['aa']:.2f}x")
print("LSTM B=64 training:")
for x in rows:
    if x["cell"] == "lstm" and x["B"] == 64 and x["mode"] == "training":
        print(f"  {x['shape']} {x['speedup']:.2f}x fused {x['fused_gflops']:.0f} torch.nn {x['torch_gflops']:.0f} GFLOP/s")
