# fused_rnn inference only, on a given number of threads: median us a step and GFLOP/s at the best
# of 30 calls (the rate the tile kernel reaches).   python tile_kernel_threads.py CELL B H I T THREADS
import torch, sys, fused_rnn, time
torch.set_num_threads(int(sys.argv[6]))
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); I=int(sys.argv[4]); T=int(sys.argv[5])
m=getattr(fused_rnn,cell)(I,H)
x=torch.randn(T,B,I)
with torch.no_grad():
    for _ in range(3): m(x)
    ts=[]
    for _ in range(30):
        s=time.perf_counter(); m(x); ts.append(time.perf_counter()-s)
ts.sort()
G={'LSTM':4,'GRU':3,'RNN':1}[cell]
print(cell,B,H,I,T,'threads',sys.argv[6],'%.1f us/step'%(ts[len(ts)//2]/T*1e6), '%.0f GFLOP/s'%(2*B*(I+H)*G*H/(ts[0]/T)/1e9))
