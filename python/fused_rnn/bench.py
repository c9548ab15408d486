"""The benchmark behind ``fused-rnn bench``: fused_rnn against torch.nn, side by side, in one process.

Each case builds a torch.nn module and the fused one with the same weights, checks
once how far apart their results are, then times both interleaved (torch.nn, fused,
torch.nn, fused, ...) so that drift of the machine hits both alike, and reports the
medians, their spread, the speedup and the achieved GFLOP/s.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import os
import platform
import statistics
import time
from typing import Callable, Iterable, Optional

import torch
from torch import nn

import fused_rnn

CELLS = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn": ("RNN", {"nonlinearity": "tanh"}),
         "rnn_relu": ("RNN", {"nonlinearity": "relu"})}
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "rnn_relu": 1}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
          "float16": torch.float16}
MODES = ("inference", "training")


@dataclasses.dataclass(frozen=True)
class Case:
    cell: str
    B: int
    I: int
    H: int
    T: int
    layers: int = 1
    directions: int = 1
    dtype: str = "float32"
    mode: str = "training"

    @property
    def shape(self) -> str:
        return f"B={self.B} I={self.I} H={self.H} T={self.T} L={self.layers} D={self.directions}"

    def flops(self) -> float:
        """Full-layer FLOPs: 2·G·H·(I_l + H)·B·T per layer and direction; x3 for training."""
        G, D = GATES[self.cell], self.directions
        total = 0.0
        for layer in range(self.layers):
            inp = self.I if layer == 0 else D * self.H
            total += D * 2 * G * self.H * (inp + self.H) * self.B * self.T
        return total * (3 if self.mode == "training" else 1)


# ---------------------------------------------------------------- matrices

def _grid(cells, shapes, dtypes, modes, layers=(1,), directions=(1,)):
    for cell, (B, I, H, T), dtype, mode, L, D in itertools.product(cells, shapes, dtypes, modes, layers, directions):
        yield Case(cell, B, I, H, T, L, D, dtype, mode)


def _deepbench(dtypes):
    """The DeepBench training and inference sets (I = H, one layer, one direction)."""
    train = {
        "lstm": [(B, H, 25) for H in (512, 1024, 2048, 4096) for B in (16, 32, 64, 128)]
        + [(B, 1536, 50) for B in (8, 16, 32)] + [(B, 256, 150) for B in (16, 32, 64)],
        "gru": [(32, H, T) for H in (2816, 2048, 1536, 2560) for T in (1500, 750, 375, 187)]
        + [(32, 512, 1)] + [(B, 1024, 1500) for B in (32, 64)],
        "rnn": [(B, H, 50) for H in (1760, 2048, 2560) for B in (16, 32, 64, 128)],
    }
    infer = {
        "lstm": [(B, H, 25) for H in (512, 1024, 2048) for B in (1, 2, 4)]
        + [(B, 1536, 50) for B in (1, 2, 4)] + [(B, 256, 150) for B in (1, 2, 4)],
        "gru": [(B, H, T) for H in (2816, 2048, 1536, 2560) for T in (1500, 187) for B in (1, 2, 4)]
        + [(B, 512, 1) for B in (1, 2, 4)] + [(B, 1024, 1500) for B in (1, 2, 4)],
    }
    for mode, table in (("training", train), ("inference", infer)):
        for cell, rows in table.items():
            for (B, H, T), dtype in itertools.product(rows, dtypes):
                yield Case(cell, B, H, H, T, 1, 1, dtype, mode)


# The fastrnns (T=100, B=64, I=H=512) and FlashRNN (B=16, T=1024, I=H=768) anchors.
GPU_ANCHORS = [(64, 512, 512, 100), (16, 768, 768, 1024)]


def matrix(name: str, device: str, dtypes: list[str], cells: list[str]) -> list[Case]:
    if name == "tiny":  # for tests: seconds, not minutes
        cases = _grid(cells, [(2, 8, 8, 4)], dtypes, MODES)
    elif name == "quick" and device == "cuda":
        cases = _grid(cells, GPU_ANCHORS, dtypes, MODES)
    elif name == "quick":
        cases = itertools.chain(
            _grid(cells, [(64, 256, 256, 50), (1, 256, 256, 50)], dtypes, MODES),
            _grid(cells, [(32, 128, 128, 50)], dtypes, MODES, layers=(2,), directions=(2,)),
        )
    elif name == "cpu":
        shapes = [(B, H, H, T) for B in (1, 8, 64) for H in (128, 256, 512, 1024) for T in (50, 200)]
        cases = _grid(cells, shapes, dtypes, MODES, layers=(1, 2))
    elif name == "deepbench":
        cases = (c for c in _deepbench(dtypes) if c.cell in cells)
    elif name == "full":
        cases = itertools.chain(
            matrix("quick", device, dtypes, cells), matrix("cpu", device, dtypes, cells),
            _grid(cells, GPU_ANCHORS, dtypes, MODES), matrix("deepbench", device, dtypes, cells),
        )
    else:
        raise ValueError(f"unknown matrix '{name}'; expected tiny, quick, cpu, deepbench or full")
    seen, out = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


# ---------------------------------------------------------------- timing

def _now(device: str) -> Callable[[], float]:
    if device == "cuda":
        def stamp():
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return stamp
    return time.perf_counter


def _elapsed_ms(device: str, start, end) -> float:
    if device == "cuda":
        end.synchronize()
        return start.elapsed_time(end)
    return (end - start) * 1e3


def _time_once(fn: Callable[[], None], device: str) -> float:
    stamp = _now(device)
    start = stamp()
    fn()
    end = stamp()
    return _elapsed_ms(device, start, end)


def _spread(times: list[float]) -> float:
    """Half the interquartile range over the median, in percent."""
    if len(times) < 4:
        return 100.0 * (max(times) - min(times)) / 2 / statistics.median(times)
    q = statistics.quantiles(times, n=4)
    return 100.0 * (q[2] - q[0]) / 2 / statistics.median(times)


def _build(case: Case, device: str):
    name, extra = CELLS[case.cell]
    dtype = DTYPES[case.dtype]
    kw = dict(num_layers=case.layers, bidirectional=case.directions == 2, device=device, dtype=dtype, **extra)
    ref = getattr(nn, name)(case.I, case.H, **kw)
    fused = getattr(fused_rnn, name)(case.I, case.H, **kw)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(case.T, case.B, case.I, device=device, dtype=dtype)
    return ref, fused, x


def _runner(model, x, mode):
    if mode == "inference":
        def run():
            with torch.no_grad():
                model(x)
        return run
    xg = x.detach().requires_grad_()

    def run():
        out, _ = model(xg)
        out.sum().backward()
    return run


def _max_rel_error(ref, fused, x, mode) -> float:
    """Largest |fused - torch.nn| over the largest |torch.nn|, over the output (and every gradient)."""
    pairs = []
    if mode == "inference":
        with torch.no_grad():
            pairs.append((fused(x)[0], ref(x)[0]))
    else:
        for m in (ref, fused):
            m.zero_grad(set_to_none=True)
        xs = [x.detach().clone().requires_grad_() for _ in range(2)]
        outs = [m(xi)[0] for m, xi in zip((ref, fused), xs)]
        for o in outs:
            o.float().pow(2).sum().backward()
        pairs += [(outs[1], outs[0]), (xs[1].grad, xs[0].grad)]
        pairs += [(b.grad, a.grad) for a, b in zip(ref.parameters(), fused.parameters())]
    return max(((g.double() - w.double()).abs().max() / w.double().abs().max().clamp_min(1e-30)).item()
               for g, w in pairs)


def _with_tier(fn: Callable, tier: Optional[str]) -> Callable:
    """fn run with the CUDA recurrent tier forced to ``tier`` (None: as it is); "persistent-grid"
    is the persistent tier with its cluster mode off (every layer on the grid-wide kernel),
    "persistent-l2" with cluster mode on but h_t and dG_t through L2 instead of distributed shared
    memory, "persistent-flags" with cluster mode off and grid mode's step barrier replaced by
    per-step flags."""
    if tier is None:
        return fn

    def run(*args):
        old = fused_rnn._C._set_cuda_tier(tier.split("-")[0])
        old_cluster = fused_rnn._C._set_persistent_cluster(tier not in ("persistent-grid", "persistent-flags"))
        old_dsmem = fused_rnn._C._set_persistent_dsmem(tier != "persistent-l2")
        old_flags = fused_rnn._C._set_persistent_flags(tier == "persistent-flags")
        try:
            return fn(*args)
        finally:
            fused_rnn._C._set_persistent_flags(old_flags)
            fused_rnn._C._set_persistent_dsmem(old_dsmem)
            fused_rnn._C._set_persistent_cluster(old_cluster)
            fused_rnn._C._set_cuda_tier(old)
    return run


def _tier_that_ran(tier: str, fn: Callable) -> tuple:
    """Runs fn under ``tier``; returns its result and the tier that actually ran (the persistent
    tier falls back to the alternating one where a layer does not fit on chip), with the
    persistent kernels' mode (cluster or grid) and products (tensor cores or not)."""
    before = fused_rnn._C._persistent_launches()
    result = _with_tier(fn, tier)()
    after = fused_rnn._C._persistent_launches()
    launched = any(after[k] > before[k] for k in after)
    if tier.startswith("persistent") and not launched:
        return result, "alternating (fallback)"
    if not launched:
        return result, "alternating"
    moved = {k for k in after if after[k] > before[k]}
    how = ["cluster" if moved & {"cluster_forward", "cluster_backward"} else "grid"]
    if moved & {"cluster_dsmem_forward", "cluster_dsmem_backward"}:
        how.append("DSMEM exchange")
    if moved & {"grid_flags_forward", "grid_flags_backward"}:
        how.append("step flags")
    if moved & {"mma_forward", "mma_backward"}:
        how.append("tensor cores")
    return result, f"persistent ({', '.join(how)})"


def run_case(case: Case, device: str, min_time: float = 0.5, min_reps: int = 5, max_reps: int = 50,
             aa: bool = False) -> dict:
    """Times one case: at least ``min_reps`` runs a side (3 where a run takes over a second)
    and at least ``min_time`` seconds a side, at most ``max_reps`` runs. With ``aa``, a second
    copy of the torch.nn model is timed in the same interleaving: the ratio of the two torch.nn
    medians (the A/A ratio) shows how far noise alone moves a speedup in this run."""
    return run_case_rows(case, device, min_time, min_reps, max_reps, aa)[0]


def run_case_rows(case: Case, device: str, min_time: float = 0.5, min_reps: int = 5, max_reps: int = 50,
                  aa: bool = False, tiers: Optional[list[str]] = None) -> list[dict]:
    """``run_case`` with one row per CUDA tier in ``tiers`` (each fused variant, torch.nn and the
    A/A copy all timed in the same interleaving), or a single row when ``tiers`` is None."""
    torch.manual_seed(0)
    ref, fused, x = _build(case, device)
    variants = tiers or [None]
    runs = {"torch": _runner(ref, x, case.mode)}
    errors, ran = {}, {}
    for tier in variants:
        if tier is None:
            errors[tier] = _max_rel_error(ref, fused, x, case.mode)  # also the warm-up of both
        else:
            errors[tier], ran[tier] = _tier_that_ran(tier, lambda: _max_rel_error(ref, fused, x, case.mode))
        runs[("fused", tier)] = _with_tier(_runner(fused, x, case.mode), tier)
    if aa:
        import copy

        runs["torch_again"] = _runner(copy.deepcopy(ref), x, case.mode)
        runs["torch_again"]()
    times = {name: [] for name in runs}
    started = time.perf_counter()
    while True:
        for name in runs:
            times[name].append(_time_once(runs[name], device))
        n = len(times["torch"])
        slow = times["torch"][0] > 1000 and all(times[("fused", t)][0] > 1000 for t in variants)
        need = 3 if slow else min_reps
        if n >= max_reps or (n >= need and time.perf_counter() - started >= (1 + len(variants)) * min_time):
            break
    t_ref = statistics.median(times["torch"])
    rows = []
    for tier in variants:
        t_fused = statistics.median(times[("fused", tier)])
        row = {
            **dataclasses.asdict(case),
            "shape": case.shape,
            "device": device,
            "reps": len(times["torch"]),
            "torch_ms": t_ref,
            "fused_ms": t_fused,
            "torch_spread_pct": _spread(times["torch"]),
            "fused_spread_pct": _spread(times[("fused", tier)]),
            "speedup": t_ref / t_fused,
            "fused_gflops": case.flops() / t_fused / 1e6,
            "torch_gflops": case.flops() / t_ref / 1e6,
            "max_rel_err": errors[tier],
            **({"aa": t_ref / statistics.median(times["torch_again"])} if aa else {}),
        }
        if tier is not None:
            row.update(tier=ran[tier], torch_us_step=1000 * t_ref / case.T, fused_us_step=1000 * t_fused / case.T)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- the machine

def cpuinfo_field(name: str) -> Optional[str]:
    """The value of the first `name` line of /proc/cpuinfo, or None where there is none (or no file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def _nvidia_driver() -> str:
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: str, threads: int) -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "torch": torch.__version__,
        "fused_rnn": fused_rnn.__version__,
        "cpu_kernels": fused_rnn.build_info()["cpu_capability"],
        "python": platform.python_version(),
        "threads": threads,
        "cpu": f"{_cpu_model()} ({os.cpu_count()} logical cores)",
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            driver=_nvidia_driver(),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return info


def header_line(env: dict) -> str:
    where = env.get("gpu") or env["cpu"]
    extra = ""
    if env["device"] == "cuda":
        extra = (f" | driver {env['driver']} | CUDA {env['cuda']} | cuDNN {env['cudnn']}"
                 f" | TF32 matmul={env['tf32_matmul']} cudnn={env['tf32_cudnn']}")
    else:
        extra = f" | {env['threads']} threads | CPU kernels {env['cpu_kernels']}"
    if env.get("gemm_gflops"):
        extra += f" | fp32 GEMM {env['gemm_gflops']:.0f} GFLOP/s"
    return f"{where} | torch {env['torch']} | fused_rnn {env['fused_rnn']}{extra} | {env['date']}"


COLUMNS = [
    ("cell", "cell", "{}"), ("shape", "shape", "{}"), ("dtype", "dtype", "{}"), ("mode", "mode", "{}"),
    ("torch_ms", "torch.nn ms", "{:.3f}"), ("fused_ms", "fused ms", "{:.3f}"), ("speedup", "speedup", "{:.2f}x"),
    ("fused_gflops", "fused GFLOP/s", "{:.1f}"), ("torch_spread_pct", "spread nn/fused %", None),
    ("max_rel_err", "max rel err", "{:.1e}"),
]
AA_COLUMN = ("aa", "A/A", "{:.2f}x")
TIER_COLUMNS = [("tier", "tier", "{}"), ("torch_us_step", "µs/step nn/fused", None)]


def _columns(rows: list[dict]) -> list[tuple]:
    columns = list(COLUMNS)
    if any("tier" in r for r in rows):
        columns[4:4] = TIER_COLUMNS
    return columns + [AA_COLUMN] if any("aa" in r for r in rows) else columns


def format_row(r: dict, columns: Optional[list] = None) -> list[str]:
    cells = []
    for key, _, fmt in columns or COLUMNS:
        if key == "torch_spread_pct":
            cells.append(f"{r['torch_spread_pct']:.1f}/{r['fused_spread_pct']:.1f}")
        elif key == "torch_us_step" and key in r:
            cells.append(f"{r['torch_us_step']:.2f}/{r['fused_us_step']:.2f}")
        elif key not in r:
            cells.append("-")
        else:
            cells.append(fmt.format(r[key]))
    return cells


def table(rows: Iterable[dict]) -> str:
    rows = list(rows)
    columns = _columns(rows)
    head = [title for _, title, _ in columns]
    body = [format_row(r, columns) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)


def markdown(rows: list[dict], env: dict) -> str:
    columns = _columns(rows)
    head = [title for _, title, _ in columns]
    lines = [f"# fused-rnn bench ({env['device']})", "", header_line(env), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(format_row(r, columns)) + " |" for r in rows]
    lines += ["", summary(rows, env)]
    return "\n".join(lines) + "\n"


def cases_timed(rows: list[dict]) -> int:
    """How many distinct cases ``rows`` hold (a case has one row per tier timed)."""
    fields = [f.name for f in dataclasses.fields(Case)]
    return len({tuple(r[k] for k in fields) for r in rows})


def geomean(values: list[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).log().mean().exp()) if values else float("nan")


def summary(rows: list[dict], env: Optional[dict] = None) -> str:
    parts = []
    tiers = sorted({r["tier"] for r in rows if "tier" in r})
    for cell in sorted({r["cell"] for r in rows}):
        for mode in MODES:
            for tier in tiers or [None]:
                sp = [r["speedup"] for r in rows
                      if r["cell"] == cell and r["mode"] == mode and r.get("tier") == tier]
                if sp:
                    name = f"{cell} {mode}" + (f" [{tier}]" if tier else "")
                    parts.append(f"{name}: geomean {geomean(sp):.2f}x, min {min(sp):.2f}x ({len(sp)} cases)")
    text = "Speedup of fused over torch.nn — " + "; ".join(parts)
    aa = [r["aa"] for r in rows if "aa" in r]
    if aa:
        text += (f"\nA/A (torch.nn timed against a copy of itself in the same interleaving): geomean "
                 f"{geomean(aa):.2f}x, range {min(aa):.2f}x to {max(aa):.2f}x over {len(aa)} cases")
    gemm = (env or {}).get("gemm_gflops")
    large = [r for r in rows if r["B"] == 64 and r["I"] == 1024 and r["H"] == 1024 and r["mode"] == "inference"
             and r["dtype"] == "float32" and r["layers"] == 1 and r["directions"] == 1]
    if gemm and large:
        text += "\nLarge-shape forward (B=64, I=H=1024) against a plain fp32 GEMM of " + f"{gemm:.0f} GFLOP/s: " + \
            ", ".join(f"{r['cell']} T={r['T']} {r['fused_gflops']:.0f} GFLOP/s "
                      f"({100 * r['fused_gflops'] / gemm:.0f}%)" for r in large)
    return text


def allocated_peak_bytes(prof) -> int:
    """The most bytes live at once in torch's CPU allocator while ``prof`` (a
    ``torch.profiler.profile(profile_memory=True)``) recorded: its allocations (+bytes) and frees
    (-bytes) summed in time order. Frees of blocks from before the record are not in it, so the
    count starts at the record's own first allocation."""
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def gemm_gflops(device: str, n: int = 2048, reps: int = 7) -> float:
    """Median GFLOP/s of a plain n x n x n fp32 matmul through torch (the machine's BLAS)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    times = [_time_once(lambda: torch.mm(a, b), device) for _ in range(reps)]
    return 2 * n ** 3 / statistics.median(times) / 1e6


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['cell']} {r['mode'][:5]} {r['shape']} {r['dtype']}" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.5))
    colors = ["tab:green" if r["speedup"] >= 1 else "tab:red" for r in rows]
    ax.barh(range(len(rows)), [r["speedup"] for r in rows], color=colors)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speedup of fused_rnn over torch.nn (median time ratio)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_matrix(cases: list[Case], device: str, progress: bool = True, min_time: float = 0.5,
               on_row: Optional[Callable[[dict], None]] = None, aa: bool = False,
               tiers: Optional[list[str]] = None, deadline: Optional[float] = None) -> list[dict]:
    """Time ``cases`` in order. With ``deadline`` (a ``time.monotonic()`` value) no case starts
    after it, though the first always runs: what was timed comes back whole, where a run killed
    at a time limit would leave nothing written (``cases_timed`` counts them)."""
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety
        tqdm = None
    rows = []
    bar = tqdm(total=len(cases), unit="case", disable=None if progress else True, leave=False) if tqdm else None
    for i, case in enumerate(cases):
        if deadline is not None and i > 0 and time.monotonic() >= deadline:
            break
        if bar is not None:
            bar.set_description(f"{case.cell} {case.mode} {case.shape}")
        for row in run_case_rows(case, device, min_time=min_time, aa=aa, tiers=tiers):
            rows.append(row)
            if on_row:
                on_row(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return rows
