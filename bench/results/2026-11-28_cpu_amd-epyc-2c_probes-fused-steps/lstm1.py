import torch, time, statistics, fused_rnn
torch.set_num_threads(2)
def med(f, n=101):
    for _ in range(5): f()
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e6
H=256
for T in (1,50,200):
  for mode,G in (('LSTM',4),('GRU',3)):
    m=getattr(fused_rnn,mode)(H,H); x=torch.randn(T,1,H)
    w_ih=m.weight_ih_l0.detach(); w_hh=m.weight_hh_l0.detach(); b1=m.bias_ih_l0.detach(); b2=m.bias_hh_l0.detach()
    xx=x.reshape(T,1,H)
    with torch.no_grad():
        if mode=='LSTM':
            op=lambda: torch.ops.fused_rnn.lstm_forward(xx,None,None,w_ih,w_hh,b1,b2,None,None,False,False)
        else:
            op=lambda: torch.ops.fused_rnn.gru_forward(xx,None,w_ih,w_hh,b1,b2,None,False,False)
        print(mode,T,"module %.0fus op %.0fus"%(med(lambda: m(x)), med(op)))
