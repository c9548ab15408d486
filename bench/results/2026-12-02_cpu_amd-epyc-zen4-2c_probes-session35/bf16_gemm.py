"""oneDNN's bf16 GEMM rate on two threads (torch's matmul of two 1024 x 1024 bf16 matrices)."""
import time, torch
torch.set_num_threads(2)
for n in (1024,):
    a = torch.randn(n, n).bfloat16(); b = torch.randn(n, n).bfloat16()
    for _ in range(3): a @ b
    t = time.perf_counter(); k = 20
    for _ in range(k): a @ b
    dt = (time.perf_counter() - t) / k; print("bf16 gemm", n, 2 * n**3 / dt / 1e9, "GFLOP/s")
