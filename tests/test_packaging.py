"""The source distribution carries what building and testing from it needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("csrc/", "tests/", "bench/", "examples/")


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def test_sdist_carries_every_source_header_and_test(tmp_path):
    """Every tracked file under csrc/ (headers and CUDA sources too, which the build's own list
    leaves out), tests/, bench/ and examples/ is in the sdist, and no recorded result is."""
    src = tmp_path / "src"
    files = [f for f in _tracked() if "/results/" not in f]
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    env = dict(os.environ, FUSED_RNN_CUDA="0")
    p = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=src, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    want = {f for f in files if f.startswith(SHIPPED)} | {"setup.py", "pyproject.toml", "README.md", "MANIFEST.in"}
    assert sorted(want - names) == []
    assert not [n for n in names if "/results/" in n or n.endswith(".so")]
