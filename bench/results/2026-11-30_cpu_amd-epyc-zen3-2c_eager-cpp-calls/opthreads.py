# One forward step of the ops (T=1), train=False and the LSTM with train=True, on 1 and on 2 threads:
# microseconds a call, min over 7 repeats of 2000 calls. Set the team bound to 0 first so that both
# thread counts run the team (the code as it was before the bound), which is what the bound was chosen from.
import torch, timeit, fused_rnn
fused_rnn._C._set_cpu_team_min_flops(0)
ops=torch.ops.fused_rnn
def m(stmt, g, n=2000):
    return min(timeit.repeat(stmt, number=n, repeat=7, globals=g))/n*1e6
for H,B in ((32,1),(64,1),(128,1),(128,16),(256,8)):
    x3=torch.randn(1,B,H); h=torch.randn(B,H)
    w=[torch.randn(H,H),torch.randn(H,H),torch.randn(H),torch.randn(H)]
    wl=[torch.randn(4*H,H),torch.randn(4*H,H),torch.randn(4*H),torch.randn(4*H)]
    g=dict(globals(), **locals())
    r=[]
    for th in (1,2):
        torch.set_num_threads(th)
        r.append((m("ops.rnn_tanh_forward.default(x3,h,*w,None,False,False)",g), m("ops.lstm_forward.default(x3,h,h,*wl,None,None,False,False)",g),
                  m("ops.lstm_forward.default(x3,h,h,*wl,None,None,False,True)",g)))
    print(H,B, "rnn inf 1th %.1f 2th %.1f | lstm inf 1th %.1f 2th %.1f | lstm train-fwd 1th %.1f 2th %.1f" % (r[0][0],r[1][0],r[0][1],r[1][1],r[0][2],r[1][2]))
