"""Alternating processes of h16_one.py for two source trees built in place; per case the median over
rounds of each build's median, and new/old."""
import collections, os, statistics, subprocess, sys
old, new, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
here = os.path.dirname(os.path.abspath(__file__))
res = collections.defaultdict(lambda: collections.defaultdict(list))
for _ in range(rounds):
    for tag, tree in (("old", old), ("new", new)):
        out = subprocess.run([sys.executable, os.path.join(here, "h16_one.py")], env=dict(os.environ, PYTHONPATH=os.path.join(tree, "python")),
                             capture_output=True, text=True, check=True).stdout
        for line in out.strip().splitlines():
            label, ms = line.split("\t")
            res[label][tag].append(float(ms))
for label, r in res.items():
    o, n = statistics.median(r["old"]), statistics.median(r["new"])
    print(f"bf16 {label} inference: old {o:.3f} ms | new {n:.3f} ms | new/old {o / n:.2f}x | old {min(r['old']):.3f}-{max(r['old']):.3f}, new {min(r['new']):.3f}-{max(r['new']):.3f}")
