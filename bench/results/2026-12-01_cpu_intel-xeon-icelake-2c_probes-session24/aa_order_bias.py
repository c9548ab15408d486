"""Whether the cpu matrix's order of runs (torch.nn, fused, torch.nn's A/A twin, repeated) favours
torch.nn: its A/A ratio is torch.nn (run right after its twin) over the twin (run right after
fused_rnn), so a geomean A/A below 1 would mean torch.nn gains from following an identical call.
Reads every recorded Ice Lake and Zen 3 matrix with an A/A column.   python aa_order_bias.py"""
import csv
import glob
import math
import os

here = os.path.dirname(os.path.abspath(__file__))
for f in sorted(glob.glob(os.path.join(here, "..", "*matrix-cpu*", "cpu.csv"))):
    rows = [r for r in csv.DictReader(open(f)) if r.get("aa")]
    if not rows:
        continue
    by_b = []
    for b in ("1", "8", "64"):
        v = [math.log(float(r["aa"])) for r in rows if r["B"] == b]
        by_b.append(f"B={b} {math.exp(sum(v) / len(v)):.3f}")
    v = [math.log(float(r["aa"])) for r in rows]
    print(f"{os.path.basename(os.path.dirname(f))}: geomean A/A {math.exp(sum(v) / len(v)):.3f} ({', '.join(by_b)})")
