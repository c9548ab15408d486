# one matrix case through bench.run_case (the harness itself), repeated in one process
import torch, sys, fused_rnn
from fused_rnn.bench import Case, run_case
torch.set_num_threads(2)
cell=sys.argv[1]; B=int(sys.argv[2]); H=int(sys.argv[3]); T=int(sys.argv[4]); L=int(sys.argv[5]) if len(sys.argv)>5 else 1
for i in range(3):
    r=run_case(Case(cell.lower(),B,H,H,T,L,1,'float32','inference'),'cpu',aa=True)
    print('%s B=%d H=%d T=%d L=%d torch %.1f fused %.1f us/step speedup %.2f A/A %.2f reps %d'%(cell,B,H,T,L,r['torch_ms']*1e3/T,r['fused_ms']*1e3/T,r['speedup'],r['aa'],r['reps']))
