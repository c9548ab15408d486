import torch, timeit, sys, importlib
torch.set_num_threads(2)
import fused_rnn
def t(f, n=5000): return min(timeit.repeat(f, number=n, repeat=9))/n*1e6
out=[]
for cell,G,opn in (("rnn",1,"rnn_tanh_forward"),("gru",3,"gru_forward"),("lstm",4,"lstm_forward")):
    H=32
    w_ih=torch.randn(G*H,H); w_hh=torch.randn(G*H,H); b_ih=torch.randn(G*H); b_hh=torch.randn(G*H)
    x=torch.randn(1,1,H); h=torch.randn(1,H)
    op=getattr(torch.ops.fused_rnn,opn).default
    args=(x,h,h,w_ih,w_hh,b_ih,b_hh,None,None,False,False) if cell=="lstm" else (x,h,w_ih,w_hh,b_ih,b_hh,None,False,False)
    with torch.no_grad():
        out.append(f"{cell} {t(lambda: op(*args)):.2f}")
print(sys.argv[1], " ".join(out), flush=True)
