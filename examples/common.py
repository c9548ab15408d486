"""What the examples share: arguments, building a model twice (torch.nn, then fused_rnn), and the report.

Each example trains the same model twice from the same seed — once with torch.nn's
recurrent layers and once after ``fused_rnn.convert`` swapped them for the fused
ones — and reports the quality of each, the time per epoch of each, and how far apart
their loss curves ended up (the swap should change the time, not the result).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import torch

import fused_rnn


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (well under 3 minutes on 2 CPU cores)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    return p


def setup(args) -> torch.device:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: --device cuda but no CUDA device is visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device)


def train_twice(make_model: Callable[[], torch.nn.Module], train: Callable[[torch.nn.Module], dict],
                seed: int) -> dict:
    """Train ``make_model()`` with torch.nn and again converted to fused_rnn, from the same seed.

    ``train(model)`` returns a dict with at least ``losses`` (one per epoch or step) and
    ``seconds`` (training time per epoch or step); it may add quality metrics.
    """
    out = {}
    for backend in ("torch.nn", "fused_rnn"):
        torch.manual_seed(seed)
        model = make_model()
        if backend == "fused_rnn":
            fused_rnn.convert(model)
        start = time.perf_counter()
        out[backend] = train(model)
        out[backend]["wall"] = time.perf_counter() - start
    a, b = out["torch.nn"]["losses"], out["fused_rnn"]["losses"]
    out["max_loss_diff"] = max(abs(x - y) for x, y in zip(a, b))
    out["speedup"] = out["torch.nn"]["seconds"] / out["fused_rnn"]["seconds"]
    return out


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Print ``rows`` as an aligned table; ``columns`` are (key, title, format)."""
    head = [title for _, title, _ in columns]
    body = [[fmt.format(r[key]) for key, _, fmt in columns] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for line in body:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


def environment_line(device: torch.device) -> str:
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return f"torch {torch.__version__} | fused_rnn {fused_rnn.__version__} | {where}"
