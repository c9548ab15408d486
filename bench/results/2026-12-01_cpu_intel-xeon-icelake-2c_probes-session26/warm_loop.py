import torch, sys, fused_rnn, time
torch.set_num_threads(2)
cell, H, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); n = int(sys.argv[4])
ours = getattr(fused_rnn, cell)(H, H); x = torch.randn(T, 1, H)
with torch.no_grad():
    for i in range(20): ours(x)
    s = time.perf_counter()
    for i in range(n): ours(x)
    print((time.perf_counter() - s) / n / T * 1e6, 'us/step')
