import torch, time, statistics, sys, fused_rnn
torch.set_num_threads(int(sys.argv[1]))
def med(f, n=15):
    for _ in range(3): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
for mode in ['LSTM','GRU']:
  for B,I,H,T in [(64,16,256,50),(64,256,256,50),(64,1024,1024,10)]:
    m=getattr(fused_rnn,mode)(I,H); r=getattr(torch.nn,mode)(I,H); x=torch.randn(T,B,I)
    G=4 if mode=='LSTM' else 3
    fl=2*T*B*G*H*(I+H)/1e9
    with torch.no_grad():
        a=[med(lambda: r(x)) for _ in range(2)]; b=[med(lambda: m(x)) for _ in range(2)]
    print(f"{sys.argv[1]}thr {mode} B={B} I={I} H={H} T={T}: torch {min(a):.2f}ms ({fl/min(a)*1e3:.0f} GF/s) fused {min(b):.2f}ms ({fl/min(b)*1e3:.0f} GF/s)", flush=True)
