"""Probe: largest relative gradient error (input and every parameter, each against its largest entry)
of bf16 training against float64 on the same rounded weights: torch.nn bf16, fused with bf16 products,
fused in fp32 arithmetic; ratio = bf16 products / max(torch.nn, fp32 arithmetic)."""
import torch, fused_rnn, copy
C=fused_rnn._C
def grads(m, x, g):
    m.zero_grad(); xx=x.detach().clone().requires_grad_(True)
    out=m(xx)[0]; (out.to(g.dtype)*g).sum().backward()
    return [xx.grad]+[p.grad for p in m.parameters()]
for mode in ("LSTM","GRU","RNN"):
  for (I,H,T,B) in [(7, 20, 17, 1), (32, 64, 50, 3), (100, 129, 33, 8), (33, 47, 40, 64)]:
    torch.manual_seed(0)
    fused=getattr(fused_rnn,mode)(I,H).bfloat16()
    ref=getattr(torch.nn,mode)(I,H).double(); ref.load_state_dict({k:v.double() for k,v in fused.state_dict().items()})
    rb=copy.deepcopy(ref).bfloat16(); x=torch.randn(T,B,I).bfloat16(); g=torch.randn(T,B,H).double()
    want=grads(ref,x.double(),g)
    def err(gs): return max(((a.double()-w).abs().max()/w.abs().max()).item() for a,w in zip(gs,want))
    et=err(grads(rb,x,g.bfloat16()))
    r={}
    for on in (True,False):
        C._set_cpu_bf16_dot(on); r[on]=err(grads(fused,x,g.float()))
    C._set_cpu_bf16_dot(True)
    print(mode,I,H,T,B,"torch %.2e  bf16 %.2e  fp32 %.2e  ratio %.2f"%(et,r[True],r[False], r[True]/max(et,r[False])))
