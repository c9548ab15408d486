"""The backward op of one LSTM layer call at small T and B, with the team of fused steps (and
panel matmul) on and off (_C._set_cpu_fused): at T = 1 both now take BLAS (e1ca8c1). Medians of
40 calls, min of 2 rounds, us. python small_backward.py"""
import datetime
import torch, time, statistics, fused_rnn
torch.set_num_threads(2)
print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, fused_rnn {fused_rnn.__file__}")
ops=torch.ops.fused_rnn; C=fused_rnn._C
def med(f, n=40):
    for _ in range(5): f()
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e6
for H in (128,512):
  for T,B in [(1,1),(2,1),(4,1),(8,1),(1,8),(1,64),(4,8)]:
    I=H
    x=torch.randn(T,B,I); hx=torch.randn(B,H); cx=torch.randn(B,H)
    wih=torch.randn(4*H,I)*0.05; whh=torch.randn(4*H,H)*0.05; bih=torch.randn(4*H); bhh=torch.randn(4*H)
    out,hn,cn,ws=ops.lstm_forward(x,hx,cx,wih,whh,bih,bhh,None,None,False,True)
    go=torch.randn_like(out); z=torch.zeros(B,H)
    f=lambda: ops.lstm_backward(go,z,z,x,hx,cx,wih,whh,bih,bhh,None,None,out,ws,False,None)
    r={}
    for _ in range(2):
        for on in (True,False):
            old=C._set_cpu_fused(on); r.setdefault(on,[]).append(med(f)); C._set_cpu_fused(old)
    print(f"H={H} T={T} B={B}: fused steps {min(r[True]):.0f} us, generic {min(r[False]):.0f} us", flush=True)
