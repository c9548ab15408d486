# The plain 2048^3 fp32 matmul through torch (MKL) on one and on two threads, medians of 10 (GFLOP/s):
# whether the VM's two vCPUs are two cores (lscpu: separate L1/L2) or share one.
import torch, time, statistics
A=torch.randn(2048,2048); B=torch.randn(2048,2048)
for th in [1,2,1,2]:
    torch.set_num_threads(th)
    for _ in range(3): A@B
    ts=[]
    for _ in range(10):
        t=time.perf_counter(); A@B; ts.append(time.perf_counter()-t)
    print(th, f"{2*2048**3/statistics.median(ts)/1e9:.0f} GF/s")
