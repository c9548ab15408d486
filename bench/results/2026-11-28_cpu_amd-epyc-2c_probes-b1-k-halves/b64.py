import torch, time, fused_rnn
ops=torch.ops.fused_rnn
torch.set_num_threads(2)
for (B,H,T) in ((64,256,50),(8,256,200),(64,1024,50)):
    I=H; torch.manual_seed(0)
    w_ih=torch.randn(4*H,I)*0.05; w_hh=torch.randn(4*H,H)*0.05; b1=torch.randn(4*H)*0.05; b2=torch.randn(4*H)*0.05
    hx=torch.zeros(B,H); cx=torch.zeros(B,H); x=torch.randn(T,B,I)
    f=lambda: ops.lstm_forward(x,hx,cx,w_ih,w_hh,b1,b2,None,None,False,False)
    for _ in range(3): f()
    ts=[]
    for _ in range(25):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    ts.sort(); print(f"LSTM inference B={B} H={H} T={T}: min {ts[0]*1e3:.2f} ms p25 {ts[len(ts)//4]*1e3:.2f} ms", flush=True)
