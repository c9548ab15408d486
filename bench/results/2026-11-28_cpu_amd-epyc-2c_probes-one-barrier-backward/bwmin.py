import torch, time, fused_rnn
torch.set_num_threads(2)
ops=torch.ops.fused_rnn
for cell,G in (("lstm",4),("rnn_tanh",1),("gru",3)):
  for (B,H,T) in ((1,64,200),(1,128,200),(1,256,200),(8,128,200)):
    I=H; torch.manual_seed(0)
    w_ih=torch.randn(G*H,I)*0.1; w_hh=torch.randn(G*H,H)*0.1; b1=torch.randn(G*H)*0.1; b2=torch.randn(G*H)*0.1
    x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
    if cell=="lstm":
        out,hn,cn,ws=ops.lstm_forward(x,hx,cx,w_ih,w_hh,b1,b2,None,None,False,True)
        go=torch.randn_like(out); g=torch.zeros(B,H)
        f=lambda: ops.lstm_backward(go,g,g,x,hx,cx,w_ih,w_hh,b1,b2,None,None,out,ws,False,None)
    else:
        fw=getattr(ops,cell+"_forward"); bw=getattr(ops,cell+"_backward")
        out,hn,ws=fw(x,hx,w_ih,w_hh,b1,b2,None,False,True)
        go=torch.randn_like(out); g=torch.zeros(B,H)
        f=lambda: bw(go,g,x,hx,w_ih,w_hh,b1,b2,None,out,ws,False)
    for _ in range(5): f()
    ts=[]
    for _ in range(150):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    ts.sort()
    print(f"{cell} B={B} H={H} T={T}: backward min {ts[0]*1e3:.3f} ms, p25 {ts[len(ts)//4]*1e3:.3f} ms", flush=True)
