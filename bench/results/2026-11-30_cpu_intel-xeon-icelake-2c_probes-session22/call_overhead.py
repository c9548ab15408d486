import torch, time, statistics, fused_rnn, sys
torch.set_num_threads(2)
def med(f,n=4000):
    for _ in range(300): f()
    ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return statistics.median(ts)*1e6
out=[]
for cell,L,B,H,T in (('LSTM',1,1,8,1),('GRU',1,1,8,1),('RNN',1,1,8,1),('LSTM',2,1,8,1),('LSTM',1,1,128,50)):
    m=getattr(fused_rnn,cell)(H,H,L).eval(); x=torch.randn(T,B,H)
    with torch.no_grad():
        out.append(f'{cell} L={L} H={H} T={T} {med(lambda: m(x), 4000 if T==1 else 500):.1f}')
print(fused_rnn.__file__.split('/')[2], ' | '.join(out))
