import sys, os, subprocess, json
sys.path.insert(0, '/work/main/bench')
import memory
cases=[("LSTM",(8,512,512,200)),("LSTM",(64,1024,1024,50)),("GRU",(8,512,512,200)),("LSTM",(1,256,256,200))]
envs={"default":{}, "nopanel":{"FUSED_RNN_CPU_PANEL_CACHE":"0"}, "seq":{"FUSED_RNN_CPU_CONCURRENT_DIRECTIONS":"0"}}
for cls,shape in cases:
    res={}
    for side in ("torch","fused"):
        for name,env in (envs.items() if side=="fused" else [("nn",{})]):
            vals=[]
            for rep in range(2):
                B,I,H,T=shape
                out=subprocess.run([sys.executable,"-c",memory.CHILD,cls,str(B),str(I),str(H),str(T),side,"2","1"],capture_output=True,text=True,check=True,env={**os.environ,**env})
                vals.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
            res[name]=vals
    print(cls,shape," ".join(f"{k}={'/'.join(f'{v:.0f}' for v in vs)}" for k,vs in res.items()),flush=True)
