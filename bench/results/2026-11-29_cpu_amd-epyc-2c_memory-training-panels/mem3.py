import sys, os, subprocess, json
sys.path.insert(0, '/work/main/bench')
import memory
cls,B,I,H,T = sys.argv[1], *sys.argv[2:6]
envs={"nn":("torch",{}),"default":("fused",{}),"seq":("fused",{"FUSED_RNN_CPU_CONCURRENT_DIRECTIONS":"0"})}
res={k:[] for k in envs}
for rep in range(int(sys.argv[6])):
    for name,(side,env) in envs.items():
        out=subprocess.run([sys.executable,"-c",memory.CHILD,cls,B,I,H,T,side,"2",sys.argv[7]],capture_output=True,text=True,check=True,env={**os.environ,**env})
        res[name].append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])
print(cls,B,H,T," ".join(f"{k}={'/'.join(f'{v:.0f}' for v in vs)}" for k,vs in res.items()),flush=True)
