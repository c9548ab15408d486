"""Peak memory of one CPU training step (forward + backward), torch.nn against fused_rnn.

Two measures, each side in fresh processes that build the model and the input and warm the
libraries up on a tiny input first:

- The resident set: how far the process's high-water mark rose over the step above its size
  before. Every page the step touched counts, including buffers outside torch's allocator (MKL's,
  oneDNN's), but so does how glibc's malloc keeps or returns freed blocks: the same case moves by
  tens of percent between processes, and a side whose warm-up freed blocks of the sizes the step
  asks for reuses them without a rise. Each side runs --repeat times (alternating), and the table
  gives the median with the range.
- The allocated peak: the most bytes live at once in torch's CPU allocator over the step (every
  tensor, from the profiler's record of each allocation and free: the CPU's counterpart of
  torch.cuda.max_memory_allocated). The same in every process, except by a block or two where
  two threads allocate at once (a bidirectional layer's directions at up to 16 rows a step, in
  whichever order they run); blind to buffers the BLAS and oneDNN allocate for themselves.

    python bench/memory.py [--threads 2] [--bidirectional] [--projected] [--repeat 3] [--markdown PATH]

--projected measures projected LSTMs (proj_size = H / 4) only.
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
cls, B, I, H, T, side, threads, bidir, steady, measure, proj = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], \
    int(sys.argv[7]), sys.argv[8] == "1", int(sys.argv[9]), sys.argv[10], int(sys.argv[11])
torch.set_num_threads(threads)
lib = torch.nn if side == "torch" else fused_rnn
model = getattr(lib, cls)(I, H, bidirectional=bidir, **({"proj_size": proj} if proj else {}))
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
if measure == "allocated":
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out, _ = model(x)
        out.sum().backward()
    from fused_rnn.bench import allocated_peak_bytes
    print(json.dumps({"peak_mib": allocated_peak_bytes(prof) / 2**20}))
    sys.exit(0)
if steady:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
out, _ = model(x)
out.sum().backward()
peak = hwm_kib() if steady else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"peak_mib": max(0, peak - before) / 1024}))
"""


def measure(cls, shape, side, threads, bidirectional=False, steady=0, what="resident", proj=0):
    """Peak MiB of one training step in a fresh process: the resident set's rise, or with
    what="allocated" the allocated peak (module docstring); proj: an LSTM's proj_size."""
    B, I, H, T = shape
    out = subprocess.run([sys.executable, "-c", CHILD, cls, str(B), str(I), str(H), str(T), side, str(threads),
                          "1" if bidirectional else "0", str(steady), what, str(proj)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bidirectional", action="store_true", help="bidirectional layers")
    p.add_argument("--projected", action="store_true", help="projected LSTMs only (proj_size = H / 4)")
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
        f"{'projected LSTM, proj_size = H / 4 | ' if args.projected else ''}"
        + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "",
        ("Rise of the resident set's high-water mark over one forward + backward" if not args.steady else
         f"Peak resident set of the training step after {args.steady} of the same shape (the high-water mark reset"
         " in between), above the resident set before them") + ", each side in a fresh process;"
        f" median (min-max) of {args.repeat} processes a side, alternating. Allocated: the most bytes live at"
        " once in torch's CPU allocator over the step (forward, then `out.sum().backward()`), from the"
        " profiler's record of every allocation and free; one process a side (it varies only where two threads"
        " allocate at once).",
        "",
        "| cell | shape | torch.nn MiB | fused MiB | fused / torch.nn (medians) "
        "| allocated: torch.nn MiB | fused MiB | fused / torch.nn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for cell, cls in ({"lstm": "LSTM"} if args.projected else CELLS).items():
        for shape in SHAPES:
            proj = shape[2] // 4 if args.projected else 0
            runs = {"torch": [], "fused": []}
            for _ in range(args.repeat):
                for side, got in runs.items():
                    got.append(measure(cls, shape, side, args.threads, args.bidirectional, args.steady, proj=proj))
            ref, ours = (statistics.median(runs[side]) for side in ("torch", "fused"))
            spread = {side: f"{min(v):.1f}-{max(v):.1f}" for side, v in runs.items()}
            a_ref, a_ours = (measure(cls, shape, side, args.threads, args.bidirectional, args.steady, "allocated",
                                     proj) for side in ("torch", "fused"))
            B, I, H, T = shape
            size = f"H={H} P={proj}" if proj else f"H={H}"
            line = (f"| {cell} | B={B} I={I} {size} T={T} | {ref:.1f} ({spread['torch']}) | "
                    f"{ours:.1f} ({spread['fused']}) | {ours / max(ref, 1e-9):.2f} | "
                    f"{a_ref:.1f} | {a_ours:.1f} | {a_ours / max(a_ref, 1e-9):.2f} |")
            lines.append(line)
            print(line, flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
