"""MKL on products with few columns and a long reduction (the weight gradient dG^T X of an input
of I features over N = 2560 rows), against the same product formed transposed: torch.mm, medians
of 50 calls, us. python skinny.py"""
import time, statistics, datetime
import torch

torch.set_num_threads(2)


def med(f, n=50):
    for _ in range(5):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e6


print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, 2 threads")
N = 2560
for GH, I in ((512, 2), (512, 8), (512, 32), (512, 128), (256, 2)):
    dG = torch.randn(N, GH)
    X = torch.randn(N, I)
    a = med(lambda: dG.t() @ X)
    b = med(lambda: (X.t() @ dG).t())
    print(f"GH={GH} I={I}: dG^T X {a:.0f} us ({2 * N * GH * I / a / 1e3:.1f} GFLOP/s), (X^T dG)^T {b:.0f} us")
