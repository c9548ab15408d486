import torch, fused_rnn, time, sys, timeit
torch.set_num_threads(int(sys.argv[1]))
H=int(sys.argv[2]) if len(sys.argv)>2 else 32
m=fused_rnn.RNNCell(H,H)
x3=torch.randn(1,1,H); h=torch.randn(1,H)
w=[m.weight_ih.detach(),m.weight_hh.detach(),m.bias_ih.detach(),m.bias_hh.detach()]
out,hn,ws=torch.ops.fused_rnn.rnn_tanh_forward(x3,h,*w,None,False,True)
go=torch.zeros_like(out); gh=torch.ones_like(hn)
bw=torch.ops.fused_rnn.rnn_tanh_backward.default
f=lambda: bw(go,gh,x3,h,*w,None,out,ws,False,input_grad=True,weight_grad=True)
f2=lambda: bw(go,gh,x3,h,*w,None,out,ws,False,input_grad=True,weight_grad=False)
print(ws.shape, [g.shape if g is not None else None for g in f()])
for k in range(3):
    print(f"bwd {min(timeit.repeat(f,number=5000,repeat=5))/5000*1e6:.1f} us, no weight grad {min(timeit.repeat(f2,number=5000,repeat=5))/5000*1e6:.1f}")
if len(sys.argv)>3:
    for _ in range(100000): f()
