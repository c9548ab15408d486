import torch, time, statistics, sys, fused_rnn
cell=sys.argv[1]; nth=int(sys.argv[2]); T=400
torch.set_num_threads(nth)
for H in (64,128,192,256,320,384,512):
    m=getattr(fused_rnn,cell)(16,H).eval(); t=getattr(torch.nn,cell)(16,H).eval()
    x=torch.randn(T,1,16)
    out=[]
    with torch.no_grad():
        for _ in range(3): m(x); t(x)
        for name,f in (('fused',m),('torch',t)):
            ts=[]
            for _ in range(20):
                s=time.perf_counter(); f(x); ts.append(time.perf_counter()-s)
            out.append(statistics.median(ts)*1e6/T)
    G=4 if cell=='LSTM' else 3 if cell=='GRU' else 1
    wb=G*H*H*4
    print(f'{cell} threads={nth} H={H} W_hh {wb/1024:.0f} KB: fused {out[0]:.2f} us/step ({wb/out[0]/1e3:.1f} GB/s) torch {out[1]:.2f} us/step ratio {out[1]/out[0]:.2f}')
