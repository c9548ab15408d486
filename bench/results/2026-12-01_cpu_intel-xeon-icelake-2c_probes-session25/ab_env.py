# torch, fused (A), torch_again, fused (B: env var VAR set) interleaved; medians us/step
import torch, sys, fused_rnn, time, copy, statistics, os
torch.set_num_threads(2)
var=sys.argv[1]; cell=sys.argv[2]; B=int(sys.argv[3]); H=int(sys.argv[4]); T=int(sys.argv[5]); reps=int(sys.argv[6]) if len(sys.argv)>6 else 200
L=int(sys.argv[7]) if len(sys.argv)>7 else 1
torch.manual_seed(0)
ref=getattr(torch.nn,cell)(H,H,L); ours=getattr(fused_rnn,cell)(H,H,L); ours.load_state_dict(ref.state_dict())
again=copy.deepcopy(ref)
x=torch.randn(T,B,H)
times={k:[] for k in ('torch','A','again','B')}
def run(m, setvar):
    if setvar: os.environ[var]='1'
    else: os.environ.pop(var, None)
    s=time.perf_counter(); m(x); e=time.perf_counter()
    return e-s
with torch.no_grad():
    for m in (ref,ours,again): m(x)
    for r in range(reps):
        times['torch'].append(run(ref,False)); times['A'].append(run(ours,False))
        times['again'].append(run(again,False)); times['B'].append(run(ours,True))
os.environ.pop(var, None)
med={k:statistics.median(v)*1e6/T for k,v in times.items()}
print(var,cell,'B=%d H=%d T=%d L=%d'%(B,H,T,L),' '.join('%s %.1f'%(k,v) for k,v in med.items()),'| speedup A %.2f B %.2f  B/A %.3f  A/A %.2f'%(med['torch']/med['A'],med['torch']/med['B'],med['A']/med['B'],med['again']/med['torch']))
