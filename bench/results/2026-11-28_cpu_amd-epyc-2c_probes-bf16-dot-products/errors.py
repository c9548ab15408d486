"""Probe: the error of bfloat16 inference against float64 on the same rounded weights and input, for the
bf16 dot products, the float32-arithmetic path and torch.nn in bfloat16."""
import torch, fused_rnn
C=fused_rnn._C
print("bf16_dot available:", fused_rnn.build_info()["cpu_bf16_dot"])
torch.manual_seed(0)
for cls in ("LSTM","GRU","RNN"):
  for (I,H,T,B) in ((7,20,17,1),(32,64,50,3),(100,129,33,8),(256,256,60,16),(33,47,40,64)):
    ref=getattr(torch.nn,cls)(I,H).double(); f=getattr(fused_rnn,cls)(I,H); f.load_state_dict({k:v.float() for k,v in ref.state_dict().items()}); f=f.bfloat16()
    refb=getattr(torch.nn,cls)(I,H).bfloat16(); refb.load_state_dict(f.state_dict())
    ref.load_state_dict({k:v.double() for k,v in f.state_dict().items()})  # the rounded weights in float64
    x=torch.randn(T,B,I).bfloat16()
    res={}
    for on in (True,False):
      C._set_cpu_bf16_dot(on); n0=C._cpu_forward_calls()["bf16_dot"]
      with torch.no_grad(): o,_=f(x)
      res[on]=(o.double(), C._cpu_forward_calls()["bf16_dot"]-n0)
    with torch.no_grad():
      want,_=ref(x.double()); nnb,_=refb(x)
    e_on=(res[True][0]-want).abs().max().item(); e_off=(res[False][0]-want).abs().max().item(); e_nn=(nnb.double()-want).abs().max().item()
    print(f"{cls} I={I} H={H} T={T} B={B}: dot calls {res[True][1]}/{res[False][1]}  err vs fp64: dot {e_on:.2e}  fp32-arith {e_off:.2e}  torch.nn bf16 {e_nn:.2e}")
C._set_cpu_bf16_dot(True)
