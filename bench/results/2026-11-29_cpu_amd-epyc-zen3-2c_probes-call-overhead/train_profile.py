import torch, fused_rnn, cProfile, pstats
torch.set_num_threads(2)
H=32
m=fused_rnn.RNNCell(H,H); x=torch.randn(1,H).requires_grad_(); h=torch.randn(1,H)
def step(): m(x,h).sum().backward()
for _ in range(100): step()
pr=cProfile.Profile(); pr.enable()
for _ in range(3000): step()
pr.disable()
pstats.Stats(pr).sort_stats('tottime').print_stats(25)
