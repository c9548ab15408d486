"""Probe: bf16 training with bf16 products (forward dot products + backward bf16 GEMMs) on and off
(_C._set_cpu_bf16_dot), interleaved in one process with torch.nn in the same loop; 11 rounds, medians.
Toggling the switch every call also swaps the panel layout each call, so the off column may be pessimistic;
the cross-process before/after probe is the one to quote."""
import torch, fused_rnn, time, statistics, copy
torch.set_num_threads(2)
C=fused_rnn._C
for (cell,B,H,T) in (("LSTM",1,256,50),("LSTM",4,256,50),("LSTM",16,256,50),("LSTM",64,256,50),("LSTM",8,512,50),("GRU",16,256,50),("RNN",16,256,50)):
    torch.manual_seed(0)
    ref=getattr(torch.nn,cell)(H,H).bfloat16(); f=getattr(fused_rnn,cell)(H,H).bfloat16(); f.load_state_dict(ref.state_dict()); x=torch.randn(T,B,H,dtype=torch.bfloat16)
    a=[];b=[];n=[]
    def step(m): m.zero_grad(); m(x)[0].float().sum().backward()
    for _ in range(2): step(f); step(ref)
    c0=C._cpu_forward_calls()["bf16_backward"]; step(f); assert C._cpu_forward_calls()["bf16_backward"]>c0
    for _ in range(11):
        for lst,on in ((a,False),(b,True)):
            C._set_cpu_bf16_dot(on); t0=time.perf_counter(); step(f); lst.append(time.perf_counter()-t0)
        t0=time.perf_counter(); step(ref); n.append(time.perf_counter()-t0)
    C._set_cpu_bf16_dot(True)
    ma,mb,mn=(statistics.median(v)*1e3 for v in (a,b,n))
    print(f"bfloat16 {cell} B={B} H={H} T={T} training: torch.nn {mn:.2f} ms | fused fp32 arithmetic {ma:.2f} ms | bf16 products {mb:.2f} ms | gain {ma/mb:.2f}x | vs torch.nn {mn/mb:.2f}x (fp32 arith {mn/ma:.2f}x)")
