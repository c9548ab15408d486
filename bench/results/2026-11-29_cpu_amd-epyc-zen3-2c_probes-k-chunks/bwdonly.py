import torch, sys, time
import fused_rnn
torch.set_num_threads(int(sys.argv[1]))
B,H,T=[int(v) for v in sys.argv[2:5]]
ops=torch.ops.fused_rnn
I=H; G=4
x=torch.randn(T,B,I); hx=torch.zeros(B,H); cx=torch.zeros(B,H)
wih=torch.randn(G*H,I)*0.05; whh=torch.randn(G*H,H)*0.05; bih=torch.randn(G*H); bhh=torch.randn(G*H)
out,hn,cn,ws=ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
go=torch.randn_like(out); z1=torch.zeros_like(hn); z2=torch.zeros_like(cn)
bwd=lambda: ops.lstm_backward(go,z1,z2,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
for _ in range(3): bwd()
import gc; gc.disable()
t=time.perf_counter(); n=0
while time.perf_counter()-t<float(sys.argv[5]) if len(sys.argv)>5 else 8: bwd(); n+=1
dt=(time.perf_counter()-t)/n
print(f"bwd {dt*1e3:.1f} ms, {4*2*T*B*G*H*H/dt/1e9:.0f} GFLOP/s")
