"""``python -m fused_rnn`` / ``fused-rnn``: fused vs torch.nn on random data, side by side.

For each cell it runs torch.nn and fused_rnn with the same weights on the same input,
prints the largest relative difference of the outputs and of the gradients (the
largest absolute difference in a tensor over that tensor's largest magnitude), and
the median time of a training step (forward + backward) of each, measured in this
process with the two interleaved.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time

import torch

import fused_rnn


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def compare(cell: str, batch: int, size: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    ref = getattr(torch.nn, cell)(size, size)
    fused = getattr(fused_rnn, cell)(size, size)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(steps, batch, size)

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            xi = x.clone().requires_grad_()
            out, _ = model(xi)
            out.sum().backward()
            return out, xi.grad
        return run

    out_ref, gx_ref = step(ref)()
    out_fused, gx_fused = step(fused)()
    pairs = [(out_fused, out_ref), (gx_fused, gx_ref)]
    pairs += [(b.grad, a.grad) for a, b in zip(ref.parameters(), fused.parameters())]
    err = max(((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item() for got, want in pairs)
    # Interleave the two so that drift of the machine hits both alike.
    t_ref, t_fused = [], []
    for _ in range(3):
        t_ref.append(_median_ms(step(ref), repeats))
        t_fused.append(_median_ms(step(fused), repeats))
    return {"cell": cell, "max_rel_err": err, "torch_ms": min(t_ref), "fused_ms": min(t_fused)}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fused-rnn", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=256, help="input and hidden size")
    p.add_argument("--steps", type=int, default=50, help="sequence length")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    for name in ("batch", "size", "steps", "repeats"):
        if getattr(args, name) < 1:
            print(f"fused-rnn: error: --{name} must be at least 1", file=sys.stderr)
            return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    info = fused_rnn.build_info()
    print(
        f"fused_rnn {fused_rnn.__version__} ({info['cpu_capability']}) | torch {torch.__version__} | {cpu_name()}"
        f" | {torch.get_num_threads()} threads | {datetime.date.today()}"
    )
    print(f"B={args.batch} I=H={args.size} T={args.steps}, float32, CPU, one layer, one direction")
    print(f"{'cell':6} {'max rel |fused - torch.nn|':>26} {'torch.nn ms':>12} {'fused ms':>10} {'speedup':>8}")
    for cell in ("LSTM", "GRU", "RNN"):
        r = compare(cell, args.batch, args.size, args.steps, args.repeats)
        print(
            f"{r['cell']:6} {r['max_rel_err']:>26.2e} {r['torch_ms']:>12.2f} {r['fused_ms']:>10.2f}"
            f" {r['torch_ms'] / r['fused_ms']:>7.2f}x"
        )
    print("(training step: forward + backward; median of repeats, best of 3 interleaved rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
