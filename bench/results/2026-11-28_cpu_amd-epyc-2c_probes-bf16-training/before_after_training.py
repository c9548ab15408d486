"""Before/after probe: runs train_one.py in alternating processes for the build of the old commit
(first argument, a source tree built in place) and the current one (second), 3 rounds each,
and prints per case the median over rounds of fused ms (old, new) and torch.nn ms."""
import collections, os, statistics, subprocess, sys
old, new = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
res = collections.defaultdict(lambda: collections.defaultdict(list))
for rnd in range(3):
    for tag, tree in (("old", old), ("new", new)):
        env = dict(os.environ, PYTHONPATH=os.path.join(tree, "python"))
        out = subprocess.run([sys.executable, os.path.join(here, "train_one.py")], env=env, capture_output=True, text=True, check=True).stdout
        for line in out.strip().splitlines():
            label, f, n = line.split("\t")
            res[label][tag].append(float(f)); res[label]["torch_" + tag].append(float(n))
print(f"{'case':32s} {'torch.nn':>9s} {'old':>9s} {'new':>9s} {'new/old':>8s} {'vs torch.nn old':>15s} {'new':>6s}")
for label, r in res.items():
    m = {k: statistics.median(v) for k, v in r.items()}
    tn = statistics.median(r["torch_old"] + r["torch_new"])
    print(f"{label:32s} {tn:9.3f} {m['old']:9.3f} {m['new']:9.3f} {m['old'] / m['new']:7.2f}x {m['torch_old'] / m['old']:14.2f}x {m['torch_new'] / m['new']:5.2f}x")
