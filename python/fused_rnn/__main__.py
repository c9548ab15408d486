"""``fused-rnn`` (also ``python -m fused_rnn``): fused_rnn against torch.nn on this machine.

    fused-rnn bench            the quick matrix on the best device present, as a table
    fused-rnn bench --help     devices, dtypes, cells, matrices, outputs
    fused-rnn info             what the installed binary contains
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import torch

import fused_rnn


class _Exit(Exception):
    """A one-line error for the user; the command exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, never a usage dump or a traceback
        raise _Exit(message)


def _split(value: str, allowed, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    for v in items:
        if v not in allowed:
            raise _Exit(f"unknown {what} '{v}'; expected {', '.join(allowed)}")
    if not items:
        raise _Exit(f"no {what} given")
    return items


def _check_writable(path: str, flag: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _Exit(f"cannot write {flag} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise _Exit(f"cannot write {flag} {path}: it is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise _Exit(f"cannot write {flag} {path}: permission denied")


def _parser() -> _Parser:
    p = _Parser(prog="fused-rnn", description="fused_rnn against torch.nn on this machine.")
    sub = p.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="time fused_rnn against torch.nn side by side")
    b.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if visible, else cpu")
    b.add_argument("--dtype", help="comma-separated: float32, float64, bfloat16, float16 "
                                   "(default: float32 on cpu; float32,bfloat16,float16 on cuda)")
    b.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated: lstm, gru, rnn, rnn_relu")
    b.add_argument("--matrix", default="quick", choices=["tiny", "quick", "cpu", "deepbench", "full"])
    b.add_argument("--threads", type=int, help="CPU threads (the process is pinned to that many cores)")
    b.add_argument("--min-time", type=float, default=0.5, help="seconds to time each side of a case, at least")
    b.add_argument("--json", metavar="PATH")
    b.add_argument("--csv", metavar="PATH")
    b.add_argument("--markdown", metavar="PATH")
    b.add_argument("--plot", metavar="PATH", help="PNG of the speedups (needs matplotlib)")
    b.add_argument("--aa", action="store_true",
                   help="also time a copy of torch.nn against itself in each case (the A/A ratio shows the noise)")
    b.add_argument("--tiers", help="cuda: comma-separated recurrent tiers to time side by side "
                                   "(alternating, persistent, persistent-grid: the persistent tier with its "
                                   "cluster mode off, persistent-l2: cluster mode with h_t and dG_t through L2 instead of "
                                   "distributed shared memory, persistent-flags: cluster mode off and grid mode's "
                                   "barrier replaced by per-step flags); one row per tier, with µs per step")
    b.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="start no case after this many seconds (the first always runs); the outputs hold the "
                        "cases timed and say how many of the matrix's were left out")
    b.add_argument("--no-progress", action="store_true")
    sub.add_parser("info", help="what the installed binary contains")
    return p


def _bench(args) -> int:
    from . import bench

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise _Exit("--device cuda: no CUDA device is visible")
    if device == "cuda" and not fused_rnn.build_info()["cuda"]:
        raise _Exit("--device cuda: this fused_rnn was built without CUDA kernels")
    default_dtype = "float32,bfloat16,float16" if device == "cuda" else "float32"
    dtypes = _split(args.dtype or default_dtype, list(bench.DTYPES), "dtype")
    if device == "cpu" and "float16" in dtypes:
        raise _Exit("dtype float16 is not supported on cpu; use float32, float64 or bfloat16")
    cells = _split(args.cells, list(bench.CELLS), "cell")
    if args.threads is not None:
        if args.threads < 1:
            raise _Exit("--threads must be at least 1")
        if hasattr(os, "sched_setaffinity"):
            allowed = sorted(os.sched_getaffinity(0))
            if args.threads > len(allowed):
                raise _Exit(f"--threads {args.threads}: only {len(allowed)} cores are available")
            os.sched_setaffinity(0, allowed[: args.threads])
        torch.set_num_threads(args.threads)
    tiers = None
    if args.tiers is not None:
        if device != "cuda":
            raise _Exit("--tiers applies to --device cuda only")
        tiers = _split(args.tiers, ["alternating", "persistent", "persistent-grid", "persistent-l2",
                                    "persistent-flags"], "tier")
    if args.min_time <= 0:
        raise _Exit("--min-time must be positive")
    if args.time_budget is not None and not args.time_budget > 0:
        raise _Exit("--time-budget must be positive")
    for flag in ("json", "csv", "markdown", "plot"):
        if getattr(args, flag):
            _check_writable(getattr(args, flag), f"--{flag}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _Exit("--plot needs matplotlib: pip install matplotlib") from None

    cases = bench.matrix(args.matrix, device, dtypes, cells)
    env = bench.environment(device, torch.get_num_threads())
    if device == "cpu" and args.matrix in ("cpu", "full"):
        env["gemm_gflops"] = bench.gemm_gflops(device)  # what the large-shape forward is held against
    print(bench.header_line(env), flush=True)
    deadline = None if args.time_budget is None else time.monotonic() + args.time_budget
    rows = bench.run_matrix(cases, device, progress=not args.no_progress, min_time=args.min_time, aa=args.aa,
                           tiers=tiers, deadline=deadline)
    timed = bench.cases_timed(rows)
    stopped = (f"Stopped at the time budget ({args.time_budget:g} s): {timed} of the matrix's {len(cases)} "
               f"cases timed" if timed < len(cases) else None)
    print(bench.table(rows))
    if stopped:
        print(stopped)
    print(bench.summary(rows, env))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "matrix": args.matrix, "cases_planned": len(cases), "cases_timed": timed,
                       "rows": rows}, f, indent=1)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
            w.writeheader()
            w.writerows(rows)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(bench.markdown(rows, env) + (f"\n{stopped}.\n" if stopped else ""))
    if args.plot:
        bench.plot(rows, args.plot)
    return 0


def main(argv=None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "bench":
            return _bench(args)
        if args.command == "info":
            for k, v in fused_rnn.build_info().items():
                print(f"{k}: {v}")
            return 0
        parser.print_help()
        return 0
    except _Exit as e:
        print(f"fused-rnn: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
