"""Probe: the in-place (dots) reading of bfloat16 weights with AVX512-BF16 dot products (bf16 dot on)
against float32 arithmetic on the same 16-bit weights (off), interleaved in one process, torch.nn in the
same loop; 21 rounds, medians, 2 threads."""
import torch, fused_rnn, time, statistics, sys
torch.set_num_threads(2)
C=fused_rnn._C
C._set_cpu_dots("always")  # the in-place reading, which auto no longer picks for kept casts
print("torch", torch.__version__, "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
for (cell,B,H,T) in (("LSTM",1,128,10),("LSTM",1,256,20),("LSTM",1,512,50),("LSTM",1,1024,50),("LSTM",2,512,20),("LSTM",4,256,10),("LSTM",4,512,20),("GRU",1,512,50),("GRU",1,1024,50),("RNN",1,1024,50)):
    ref=getattr(torch.nn,cell)(H,H).bfloat16(); f=getattr(fused_rnn,cell)(H,H).bfloat16(); f.load_state_dict(ref.state_dict()); x=torch.randn(T,B,H,dtype=torch.bfloat16)
    a=[];b=[];n=[]
    with torch.no_grad():
        for _ in range(3): f(x); ref(x)
        d0=C._cpu_forward_calls()["dots"]; f(x); isdots=C._cpu_forward_calls()["dots"]>d0
        for _ in range(21):
            for lst,on in ((a,False),(b,True)):
                C._set_cpu_bf16_dot(on); t0=time.perf_counter(); f(x); lst.append(time.perf_counter()-t0)
            t0=time.perf_counter(); ref(x); n.append(time.perf_counter()-t0)
    C._set_cpu_bf16_dot(True)
    ma,mb,mn=(statistics.median(v)*1e3 for v in (a,b,n))
    print(f"bfloat16 {cell} B={B} H={H} T={T} inference ({'in place' if isdots else 'panels'}): torch.nn {mn:.3f} ms | fused fp32 arithmetic {ma:.3f} ms | bf16 dot products {mb:.3f} ms | gain {ma/mb:.2f}x | speedup over torch.nn {mn/mb:.2f}x")
