import torch, time, sys
import fused_rnn
torch.set_num_threads(2)
ops = torch.ops.fused_rnn
B,H,T=map(int,sys.argv[1].split(','))
I=H
x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
nn=torch.nn.LSTM(I,H)
wih,whh,bih,bhh=[p.detach() for p in nn.parameters()]
out,hn,cn,ws=ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
go=torch.randn_like(out); ghn=torch.zeros_like(hn); gcn=torch.zeros_like(cn)
bwd=lambda: ops.lstm_backward(go,ghn,gcn,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
for _ in range(3): bwd()
t=time.perf_counter(); n=0
while time.perf_counter()-t < float(sys.argv[2]): bwd(); n+=1
print(n, (time.perf_counter()-t)/n*1e3, "ms")
