import torch, time, statistics, sys, fused_rnn
C=fused_rnn._C
C._set_cpu_team_min_flops(0)
T=2000
for nth in (1,2):
    torch.set_num_threads(nth)
    for H in (32,64,128,256):
        m=fused_rnn.LSTM(16,H).eval()
        x=torch.randn(T,1,16)
        with torch.no_grad():
            for _ in range(3): m(x)
            ts=[]
            for _ in range(15):
                s=time.perf_counter(); m(x); ts.append(time.perf_counter()-s)
        print(f"threads={nth} H={H}: {statistics.median(ts)*1e6/T:.2f} us/step (min {min(ts)*1e6/T:.2f})", flush=True)
