"""One cpu-matrix case (LSTM B=1 I=H=256 T=50, one layer, inference) timed by the matrix's own
harness (fused_rnn.bench.run_case, with the A/A twin), in a fresh process each time: how far
torch.nn's and fused_rnn's per-step times move between processes.   python b1_matrix_case_processes.py"""
import subprocess
import sys

CHILD = r"""
import torch
from fused_rnn.bench import Case, run_case
torch.set_num_threads(2)
r = run_case(Case("lstm", 1, 256, 256, 50, 1, 1, "float32", "inference"), "cpu", aa=True)
print(f"torch.nn {r['torch_ms'] / 50 * 1e3:.1f} us/step  fused {r['fused_ms'] / 50 * 1e3:.1f} us/step  "
      f"speedup {r['speedup']:.2f}x  A/A {r['aa']:.2f}")
"""
for i in range(8):
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    print(f"process {i}: {out.strip()}", flush=True)
