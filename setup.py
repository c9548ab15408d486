"""Build fused_rnn._C: CPU kernels always, CUDA kernels when enabled.

FUSED_RNN_CUDA=auto|0|1 decides the CUDA part (auto: torch was built with CUDA and
nvcc is found). TORCH_CUDA_ARCH_LIST and MAX_JOBS pass through to torch's builder.
FUSED_RNN_SANITIZE=1 builds with -fsanitize=address,undefined (for tests under ASan).
The build prints what it decided and why.

Install against the torch already present: pip install --no-build-isolation .
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:  # pragma: no cover - the message is the point
    sys.exit(
        "fused_rnn: building needs torch installed first. Install torch, then run "
        "`pip install --no-build-isolation .` so the extension is built against that torch."
    )

ROOT = os.path.dirname(os.path.abspath(__file__))


def say(msg):
    print(f"fused_rnn build: {msg}", flush=True)


def nvcc_path():
    if CUDA_HOME:
        cand = os.path.join(CUDA_HOME, "bin", "nvcc")
        if os.path.exists(cand):
            return cand
    return shutil.which("nvcc")


def nvcc_cuda_version(nvcc):
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def decide_cuda():
    """Return (build_cuda, reason); exit with a clear message where CUDA was forced but cannot be built."""
    mode = os.environ.get("FUSED_RNN_CUDA", "auto").strip().lower()
    if mode not in ("auto", "0", "1"):
        sys.exit(f"fused_rnn: FUSED_RNN_CUDA must be auto, 0 or 1, got {mode!r}")
    if mode == "0":
        return False, "FUSED_RNN_CUDA=0"
    problems = []
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} was built without CUDA")
    nvcc = nvcc_path()
    if nvcc is None:
        problems.append("nvcc was not found (set CUDA_HOME or put nvcc on PATH)")
    elif torch.version.cuda is not None:
        have = nvcc_cuda_version(nvcc)
        want = tuple(int(x) for x in torch.version.cuda.split(".")[:2])
        if have is None:
            problems.append(f"could not read the CUDA version of {nvcc}")
        elif have[0] != want[0]:
            problems.append(
                f"nvcc at {nvcc} is CUDA {have[0]}.{have[1]} but torch was built with CUDA "
                f"{want[0]}.{want[1]}; the major versions must match"
            )
    if not glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")):
        problems.append("this version has no CUDA sources yet (csrc/cuda/ is empty)")
    if problems:
        if mode == "1":
            sys.exit("fused_rnn: FUSED_RNN_CUDA=1 but CUDA kernels cannot be built: " + "; ".join(problems))
        return False, "auto: " + "; ".join(problems)
    return True, f"FUSED_RNN_CUDA={mode}: torch CUDA {torch.version.cuda}, nvcc at {nvcc}"


def openmp_flags():
    # ATen's parallel_for is a header template: it runs in parallel only in code
    # compiled with OpenMP (otherwise it silently runs on one thread). Linking with
    # -fopenmp records libgomp.so.1, which resolves to the copy torch has already loaded.
    if torch._C.has_openmp and sys.platform.startswith("linux"):
        return ["-fopenmp"]
    return []


def extension():
    build_cuda, reason = decide_cuda()
    say(f"CUDA kernels {'ON' if build_cuda else 'OFF'} ({reason})")
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    omp = openmp_flags()
    say(f"OpenMP for ATen's parallel_for: {'ON' if omp else 'OFF'}")
    # -Wno-unknown-pragmas: ATen's vector headers carry `#pragma unroll` and `#pragma clang
    # diagnostic`, which GCC reports under Python's -Wall (about 70 warnings a build, none about
    # this project's code).
    cxx = ["-O3", "-Wno-psabi", "-Wno-unknown-pragmas", f'-DFUSED_RNN_TORCH_VERSION="{torch.__version__}"'] + omp
    ldflags = list(omp)
    if os.environ.get("FUSED_RNN_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"]
        cxx = [f for f in cxx if f != "-O3"] + ["-O1"] + san
        ldflags += san
        say("sanitizers ON (address, undefined)")
    if not build_cuda:
        return CppExtension("fused_rnn._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=ldflags)
    sources += sorted(glob.glob("csrc/cuda/*.cu") + glob.glob("csrc/cuda/*.cpp"))
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "")
    cxx += ["-DFUSED_RNN_WITH_CUDA", f'-DFUSED_RNN_CUDA_ARCHS="{archs or "torch default"}"']
    # No --use_fast_math: the gates use accurate expf/tanhf, as torch.nn's reference does.
    nvcc = ["-O3", "-lineinfo", "-DFUSED_RNN_WITH_CUDA"]
    say(f"TORCH_CUDA_ARCH_LIST={archs or '(torch default)'}, MAX_JOBS={os.environ.get('MAX_JOBS', '(torch default)')}")
    return CUDAExtension(
        "fused_rnn._C", sources, extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=ldflags
    )


def license_metadata():
    """BSD-3-Clause as an SPDX expression (core metadata's License-Expression) where setuptools
    takes one (77 and newer, where pyproject.toml's table form is deprecated and, from 2027-02-18,
    unsupported), else the free-text License field older releases know (the string form is an
    error there)."""
    import setuptools

    major = int(re.match(r"\d+", setuptools.__version__).group())
    return {"license_expression": "BSD-3-Clause"} if major >= 77 else {"license": "BSD-3-Clause"}


setup(
    ext_modules=[extension()],
    **license_metadata(),
    cmdclass={"build_ext": BuildExtension},
)
