"""Probe: bfloat16 inference with AVX512-BF16 dot products against float32 arithmetic on the same
16-bit weights, interleaved in one process through _C._set_cpu_bf16_dot, with torch.nn (oneDNN bf16
for the LSTM) in the same loop; 15 rounds, medians, 2 threads."""
import torch, fused_rnn, time, statistics
torch.set_num_threads(2)
C=fused_rnn._C
print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for (cell,B,H,T) in (("LSTM",1,128,50),("LSTM",1,256,200),("LSTM",1,512,50),("LSTM",1,1024,50),("LSTM",4,256,100),("LSTM",8,512,50),("LSTM",16,256,50),("LSTM",64,256,50),("GRU",8,512,50),("GRU",64,256,50)):
    ref=getattr(torch.nn,cell)(H,H).bfloat16(); f=getattr(fused_rnn,cell)(H,H).bfloat16(); f.load_state_dict(ref.state_dict()); x=torch.randn(T,B,H,dtype=torch.bfloat16)
    a=[];b=[];n=[]
    with torch.no_grad():
        for _ in range(3): f(x); ref(x)
        for _ in range(15):
            for lst,on in ((a,False),(b,True)):
                C._set_cpu_bf16_dot(on); t0=time.perf_counter(); f(x); lst.append(time.perf_counter()-t0)
            t0=time.perf_counter(); ref(x); n.append(time.perf_counter()-t0)
    C._set_cpu_bf16_dot(True)
    ma,mb,mn=(statistics.median(v)*1e3 for v in (a,b,n))
    print(f"bfloat16 {cell} B={B} H={H} T={T} inference: torch.nn {mn:.2f} ms | fused fp32 arithmetic {ma:.2f} ms | bf16 dot products {mb:.2f} ms | gain {ma/mb:.2f}x | speedup over torch.nn {mn/mb:.2f}x")
