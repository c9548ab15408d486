import time, statistics
def ab(fns, number=20, reps=101, warm=3):
    """fns: dict name->callable. Alternates them (rotating order) rep by rep; returns medians (s per call)."""
    names = list(fns)
    for f in fns.values():
        for _ in range(warm): f()
    ts = {k: [] for k in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            f = fns[k]
            a = time.perf_counter()
            for _ in range(number): f()
            ts[k].append((time.perf_counter() - a) / number)
    return {k: statistics.median(v) for k, v in ts.items()}
