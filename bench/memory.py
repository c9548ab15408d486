"""Peak memory of one CPU training step (forward + backward), torch.nn against fused_rnn.

torch has no allocator statistics on the CPU, so each side runs in a fresh process: it builds
the model and the input, warms the libraries up on a tiny input, records its resident set size,
runs one training step, and reports how far the resident set's high-water mark rose above that.
Every byte the step allocated and touched counts, freed or not, as in an allocator's peak.

Each side runs --repeat times (fresh processes, alternating), and the table gives the median
with the range: the same case moves by tens of percent between processes (glibc's malloc keeps
or returns freed blocks differently from run to run).

    python bench/memory.py [--threads 2] [--bidirectional] [--repeat 3] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys

import torch

SHAPES = [(64, 256, 256, 50), (1, 256, 256, 200), (8, 512, 512, 200), (64, 1024, 1024, 50)]
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}

CHILD = r"""
import json, resource, sys
import torch
import fused_rnn
cls, B, I, H, T, side, threads, bidir, steady = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], \
    int(sys.argv[7]), sys.argv[8] == "1", int(sys.argv[9])
torch.set_num_threads(threads)
lib = torch.nn if side == "torch" else fused_rnn
model = getattr(lib, cls)(I, H, bidirectional=bidir)
x = torch.randn(T, B, I, requires_grad=True)
warm = torch.randn(2, 1, I, requires_grad=True)
out, _ = model(warm)
out.sum().backward()
model.zero_grad(set_to_none=True)

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024

def hwm_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

before = rss_kib()
for _ in range(steady):  # steps of the same shape first; then the high-water mark starts afresh
    out, _ = model(x)
    out.sum().backward()
    model.zero_grad(set_to_none=True)
    x.grad = None
if steady:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
out, _ = model(x)
out.sum().backward()
peak = hwm_kib() if steady else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"peak_mib": max(0, peak - before) / 1024}))
"""


def measure(cls, shape, side, threads, bidirectional=False, steady=0):
    B, I, H, T = shape
    out = subprocess.run([sys.executable, "-c", CHILD, cls, str(B), str(I), str(H), str(T), side, str(threads),
                          "1" if bidirectional else "0", str(steady)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bidirectional", action="store_true", help="bidirectional layers")
    p.add_argument("--repeat", type=int, default=3, help="processes a side and case (median reported)")
    p.add_argument("--steady", type=int, default=0, metavar="N",
                   help="first N training steps of the same shape, then the peak of the next one above the RSS "
                        "before them (memory kept between steps counts); default: one step after a tiny warm-up")
    p.add_argument("--markdown", metavar="PATH")
    args = p.parse_args()
    import fused_rnn

    lines = [
        "# Peak memory of one CPU training step",
        "",
        f"{platform.processor() or platform.machine()} | torch {torch.__version__} | fused_rnn {fused_rnn.__version__}"
        f" | {args.threads} threads | float32 | {'bidirectional | ' if args.bidirectional else ''}"
        + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "",
        ("Rise of the resident set's high-water mark over one forward + backward" if not args.steady else
         f"Peak resident set of the training step after {args.steady} of the same shape (the high-water mark reset"
         " in between), above the resident set before them") + ", each side in a fresh process;"
        f" median (min-max) of {args.repeat} processes a side, alternating.",
        "",
        "| cell | shape | torch.nn MiB | fused MiB | fused / torch.nn (medians) |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for cell, cls in CELLS.items():
        for shape in SHAPES:
            runs = {"torch": [], "fused": []}
            for _ in range(args.repeat):
                for side, got in runs.items():
                    got.append(measure(cls, shape, side, args.threads, args.bidirectional, args.steady))
            ref, ours = (statistics.median(runs[side]) for side in ("torch", "fused"))
            spread = {side: f"{min(v):.1f}-{max(v):.1f}" for side, v in runs.items()}
            B, I, H, T = shape
            line = (f"| {cell} | B={B} I={I} H={H} T={T} | {ref:.1f} ({spread['torch']}) | "
                    f"{ours:.1f} ({spread['fused']}) | {ours / max(ref, 1e-9):.2f} |")
            lines.append(line)
            print(line, flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
