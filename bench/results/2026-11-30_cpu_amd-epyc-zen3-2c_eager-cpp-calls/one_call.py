import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
from ab import ab
import torch, fused_rnn
from fused_rnn import _C, functional as F
torch.set_num_threads(2)
H,B=32,1
f = fused_rnn.RNNCell(H,H); ref=torch.nn.RNNCell(H,H)
x = torch.randn(B,H); h=torch.randn(B,H); x3=x.unsqueeze(0)
w=[f.weight_ih,f.weight_hh,f.bias_ih,f.bias_hh]
with torch.no_grad():
    r=ab({"nn_module": lambda: ref(x,h), "VF": lambda: torch._VF.rnn_tanh_cell(x,h,*w), "module": lambda: f(x,h),
          "rnn_layer": lambda: F.rnn_layer(x3,*w,h), "C_infer": lambda: _C._simple_infer('rnn_tanh',x3,h,*w,None,False),
          "unsqueeze": lambda: x.unsqueeze(0), "getattr4": lambda: (f.weight_ih,f.weight_hh,f.bias_ih,f.bias_hh)}, number=200, reps=41)
print({k: round(v*1e6,2) for k,v in r.items()})
