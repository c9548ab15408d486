import json, statistics, sys
rows = {"old": [], "new": []}
for line in open(sys.argv[1]):
    side, js = line.split(" ", 1); d = json.loads(js); rows[side].append(d)
print(len(rows["old"]), "processes a side")
for k in rows["old"][0]["t"]:
    o = [r["t"][k] for r in rows["old"]]; n = [r["t"][k] for r in rows["new"]]
    rat = sorted(a / b for a, b in zip(o, n))
    print(f"{k:24s} old {statistics.median(o)*1e3:8.2f} ms new {statistics.median(n)*1e3:8.2f} ms  old/new of medians {statistics.median(o)/statistics.median(n):.3f}  pairs {[round(x,3) for x in rat]}")
