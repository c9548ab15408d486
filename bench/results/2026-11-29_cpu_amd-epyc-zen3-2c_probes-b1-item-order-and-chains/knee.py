# Per-step time of the fused LSTM, B=1 inference, by H and thread count, serpentine off/on (min of 7).
import torch, time, fused_rnn, os, sys
def setv(d): os.environ["FUSED_RNN_PROBE_SERPENTINE"] = "1" if d else "0"
T = 400
for th in (1, 2):
    torch.set_num_threads(th)
    for H in (128, 160, 192, 224, 256, 320, 384, 512):
        f = fused_rnn.LSTM(H, H); x = torch.randn(T, 1, H)
        res = {}
        with torch.no_grad():
            f(x)
            for d in (0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1):
                setv(d); a = time.perf_counter(); f(x); e = time.perf_counter() - a
                res[d] = min(res.get(d, 1e9), e)
        wb = 4 * H * H * 4
        print(f"th={th} H={H} W_hh {wb/1024:.0f} KB: plain {res[0]/T*1e6:.2f} us/step ({wb/(res[0]/T)/1e9:.1f} GB/s) "
              f"serp {res[1]/T*1e6:.2f} us/step  ratio {res[1]/res[0]:.3f}", flush=True)
