import torch, fused_rnn, sys
torch.set_num_threads(int(sys.argv[1]))
H=int(sys.argv[2])
f=fused_rnn.LSTM(H,H); x=torch.randn(400,1,H)
with torch.no_grad():
    for _ in range(int(sys.argv[3])): f(x)
