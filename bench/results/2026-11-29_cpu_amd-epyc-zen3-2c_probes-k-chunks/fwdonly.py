import torch, sys, time
import fused_rnn
torch.set_num_threads(int(sys.argv[1]))
ops=torch.ops.fused_rnn
B,H,T=64,512,50; I=H; G=4
x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
fwd=lambda: ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
for _ in range(3): fwd()
t=time.perf_counter(); n=0
while time.perf_counter()-t<8: fwd(); n+=1
dt=(time.perf_counter()-t)/n
print(f"{dt*1e3:.1f} ms, {2*2*T*B*G*H*H/dt/1e9:.0f} GFLOP/s")
