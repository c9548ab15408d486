import torch, timeit, fused_rnn, sys
torch.set_num_threads(int(sys.argv[1]))
def t(f, n=5000): return min(timeit.repeat(f, number=n, repeat=9))/n*1e6
H=32
m=fused_rnn.RNNCell(H,H); ref=torch.nn.RNNCell(H,H)
x=torch.randn(1,H); x3=x.unsqueeze(0); h=torch.randn(1,H)
w=[m.weight_ih,m.weight_hh,m.bias_ih,m.bias_hh]
op=torch.ops.fused_rnn.rnn_tanh_forward.default
with torch.no_grad():
  for _ in range(2):
    print(f"op nobias {t(lambda: op(x3,h,w[0],w[1],None,None,None,False,False)):.2f} op {t(lambda: op(x3,h,*w,None,False,False)):.2f} op train {t(lambda: op(x3,h,*w,None,False,True)):.2f} "
          f"_VF cell {t(lambda: torch._VF.rnn_tanh_cell(x,h,*w)):.2f} nn module {t(lambda: ref(x,h)):.2f} fused module {t(lambda: m(x,h)):.2f} empty {t(lambda: torch.empty(1,1,32)):.2f} add {t(lambda: torch.add(w[2],w[3])):.2f}")
