import torch, sys, fused_rnn, time
torch.set_num_threads(2)
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); T=int(sys.argv[4]); n=int(sys.argv[5])
m=getattr(fused_rnn,cell)(H,H)
x=torch.randn(T,B,H).requires_grad_()
for _ in range(3): m(x)[0].sum().backward()
s=time.perf_counter()
for _ in range(n): m(x)[0].sum().backward()
print('%.2f ms/step'%((time.perf_counter()-s)/n*1e3))
