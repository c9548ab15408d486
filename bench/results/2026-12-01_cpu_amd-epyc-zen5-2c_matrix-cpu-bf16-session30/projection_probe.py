import time, torch, fused_rnn, statistics, sys
torch.set_num_threads(2)
def t(f, n=15):
    f(); f()
    ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return statistics.median(ts)*1e3
B,H,T=64,int(sys.argv[1]),200
for I in (H, 16):
    torch.manual_seed(0)
    nn_=torch.nn.LSTM(I,H).to(torch.bfloat16); fu=fused_rnn.LSTM(I,H).to(torch.bfloat16); fu.load_state_dict(nn_.state_dict())
    x=torch.randn(T,B,I).to(torch.bfloat16)
    with torch.no_grad():
        tn, tf = t(lambda: nn_(x)), t(lambda: fu(x))
    fl=2*4*H*(I+H)*B*T
    flh=2*4*H*H*B*T
    print(f"H={H} I={I}: torch {tn:.2f} ms ({fl/tn/1e6:.0f} GF/s)  fused {tf:.2f} ms ({fl/tf/1e6:.0f} GF/s)")
