"""torch.profiler's table of ten LSTM training steps (B=64, I=H=128, T=50), fused_rnn with its weight
gradients on its own product (weight_grad_tiles on) and off (oneDNN in blocks, with its copies)."""
import torch, fused_rnn
from fused_rnn import _C
from torch.profiler import profile, ProfilerActivity
torch.set_num_threads(2); torch.manual_seed(0)
m = fused_rnn.LSTM(128, 128); x = torch.randn(50, 64, 128, requires_grad=True)
g = torch.randn(50, 64, 128)
for on in (False, True):
    _C._set_cpu_weight_grad_tiles(on)
    for _ in range(5): m(x)[0].backward(g)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        for _ in range(10): m(x)[0].backward(g)
    print(f"weight_grad_tiles={on}")
    print(p.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=32, max_shapes_column_width=50))
