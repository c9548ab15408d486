# torch, fused, torch_again interleaved as in bench.run_case; medians us/step
import torch, sys, fused_rnn, time, copy, statistics
torch.set_num_threads(2)
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); T=int(sys.argv[4]); reps=int(sys.argv[5]) if len(sys.argv)>5 else 200
torch.manual_seed(0)
ref=getattr(torch.nn,cell)(H,H,1); ours=getattr(fused_rnn,cell)(H,H,1); ours.load_state_dict(ref.state_dict())
again=copy.deepcopy(ref)
x=torch.randn(T,B,H)
runs={'torch':ref,'fused':ours,'again':again}
times={k:[] for k in runs}
with torch.no_grad():
    for m in runs.values(): m(x)
    for r in range(reps):
        for k,m in runs.items():
            s=time.perf_counter(); m(x); times[k].append(time.perf_counter()-s)
med={k:statistics.median(v)*1e6/T for k,v in times.items()}
print(cell,B,H,T,' '.join('%s %.1f'%(k,v) for k,v in med.items()),'speedup %.2f A/A %.2f'%(med['torch']/med['fused'],med['again']/med['torch']))
