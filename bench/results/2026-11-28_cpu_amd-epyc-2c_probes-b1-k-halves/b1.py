import torch, time, fused_rnn, sys
ops=torch.ops.fused_rnn
H=int(sys.argv[1]); B=1; I=H
torch.manual_seed(0)
w_ih=torch.randn(4*H,I)*0.05; w_hh=torch.randn(4*H,H)*0.05; b1=torch.randn(4*H)*0.05; b2=torch.randn(4*H)*0.05
hx=torch.zeros(B,H); cx=torch.zeros(B,H)
for th in (1,2):
    torch.set_num_threads(th)
    res=[]
    for T in (50,1000):
        x=torch.randn(T,B,I)
        f=lambda: ops.lstm_forward(x,hx,cx,w_ih,w_hh,b1,b2,None,None,False,False)
        for _ in range(5): f()
        ts=[]
        for _ in range(30):
            t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
        ts.sort(); res.append(ts[len(ts)//4]*1e3)
    print(f"H={H} threads={th}: T=50 {res[0]:.3f} ms, T=1000 {res[1]:.3f} ms, marginal {(res[1]-res[0])/950*1e3:.2f} us/step")
