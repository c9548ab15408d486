"""bench/gpu_check.sh's summary: a pytest log's outcomes by recurrent tier, and the benchmark's
times by tier in a short table.

    python bench/gpu_check_summary.py cuda_tests.log
    python bench/gpu_check_summary.py --bench gpu_bench.json

Reads the one-line-per-test output of ``pytest -v`` (plain, or pytest-xdist's ``[gw0] ...``
form), so a log cut off at a time limit still counts what ran. A test's tier is the first field of
its parameters (test_cuda.py's autouse fixture puts it there: ``[persistent-grid-...]``); tests
without one count as "other". Prints one line per tier and then the tests that failed, and
exits 0 (the counts are a report; pytest's own exit status says pass or fail).
"""

from __future__ import annotations

import re
import sys
from collections import Counter

TIERS = ("alternating", "persistent-grid", "persistent")  # longest match first
OUTCOMES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
_LINE = re.compile(r"(tests/\S+::\S+)")
_OUTCOME = re.compile(r"\b(" + "|".join(OUTCOMES) + r")\b")


def tier_of(test_id: str) -> str:
    params = test_id.partition("[")[2]
    for tier in TIERS:
        if params == tier + "]" or params.startswith(tier + "-"):
            return tier
    return "other"


def count(lines) -> tuple[dict, list[str]]:
    """({tier: Counter(outcome: n)}, failed test ids) from pytest -v lines; a test reported
    twice (an ERROR in teardown after PASSED) keeps its worst outcome."""
    outcome_of: dict[str, str] = {}
    rank = {o: i for i, o in enumerate(("SKIPPED", "XFAIL", "PASSED", "XPASS", "FAILED", "ERROR"))}
    for line in lines:
        test, outcome = _LINE.search(line), _OUTCOME.search(line)
        if not (test and outcome) or line.startswith(("FAILED ", "ERROR ")):  # -r summary lines repeat
            continue
        tid, o = test.group(1), outcome.group(1)
        if tid not in outcome_of or rank[o] > rank[outcome_of[tid]]:
            outcome_of[tid] = o
    by_tier: dict[str, Counter] = {}
    for tid, o in outcome_of.items():
        by_tier.setdefault(tier_of(tid), Counter())[o] += 1
    failed = sorted(t for t, o in outcome_of.items() if o in ("FAILED", "ERROR", "XPASS"))
    return by_tier, failed


def report(lines) -> str:
    by_tier, failed = count(lines)
    out = []
    for tier in ("alternating", "persistent", "persistent-grid", "other"):
        if tier in by_tier:
            c = by_tier[tier]
            out.append(f"{tier}: " + ", ".join(f"{c[o]} {o.lower()}" for o in OUTCOMES if c[o]))
    if not by_tier:
        out.append("no test outcomes in the log")
    out += [f"  failed: {t}" for t in failed[:40]]
    if len(failed) > 40:
        out.append(f"  ... and {len(failed) - 40} more")
    return "\n".join(out)


def bench_table(data: dict) -> str:
    """One line per case of a ``fused-rnn bench --tiers ... --json`` file: torch.nn's median and
    each tier's, in ms and µs per step, with the speedup (the case's tiers side by side)."""
    cases: dict[tuple, dict] = {}
    for r in data["rows"]:
        key = (r["cell"], r["dtype"], r["mode"], r["shape"])
        case = cases.setdefault(key, {"torch": (r["torch_ms"], r.get("torch_us_step"))})
        case[r.get("tier", "fused")] = (r["fused_ms"], r.get("fused_us_step"), r["speedup"])
    out = []
    for (cell, dtype, mode, shape), case in cases.items():
        ms, us = case.pop("torch")
        cols = [f"torch.nn {ms:.3f} ms" + (f" ({us:.2f} us/step)" if us else "")]
        cols += [f"{tier} {t:.3f} ms" + (f" ({u:.2f} us/step)" if u else "") + f" {sp:.2f}x"
                 for tier, (t, u, sp) in case.items()]
        out.append(f"{cell} {dtype} {mode} {shape}: " + " | ".join(cols))
    if data.get("cases_timed", len(cases)) < data.get("cases_planned", len(cases)):
        out.append(f"(stopped at the time budget: {data['cases_timed']} of {data['cases_planned']} cases)")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1] == "--bench":
        import json

        with open(sys.argv[2]) as f:
            print(bench_table(json.load(f)))
    else:
        with open(sys.argv[1], errors="replace") as f:
            print(report(f))
