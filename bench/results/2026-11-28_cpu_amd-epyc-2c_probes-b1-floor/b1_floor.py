"""B=1 float32 inference against the floor of this machine, all in one process, interleaved.

Per shape (one layer, I = H, T steps, 2 threads): torch.nn (oneDNN LSTM / torch's GRU loop),
fused_rnn, and two parts no B=1 implementation can avoid:
  floor  one step's stream of W_hh through the cores in a GEMV with one barrier (floor.cpp,
         built as /tmp/floor/libfloor.so), times T;
  proj   the input projection x W_ih^T for all T steps as one GEMM (torch.mm, MKL).
bound = floor + proj; 'ceiling' = torch.nn / bound, the most any B=1 kernel that streams W_hh
each step could gain over torch.nn here. Medians of 30 calls a round, 5 rounds; the table gives
the median over rounds and the range of the per-round torch.nn/fused ratio.
Usage: python b1_floor.py"""
import ctypes, statistics, time, platform, datetime
import torch, fused_rnn

torch.set_num_threads(2)
lib = ctypes.CDLL("/tmp/floor/libfloor.so")
lib.floor_step_us.restype = ctypes.c_double
lib.floor_step_us.argtypes = [ctypes.c_int] * 5


def med(f, n=30):
    for _ in range(3):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e6


print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
      f"{platform.processor() or 'x86_64'}, 2 threads; times in us per call (T steps); B=1, I=H, one layer")
print("| cell | H | T | torch.nn | fused | floor (W_hh stream x T) | proj (GEMM) | bound | fused/bound | "
      "speedup (range) | ceiling |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cell, G in (("LSTM", 4), ("GRU", 3)):
    for H in (128, 256, 512, 1024):
        T = 200
        ref = getattr(torch.nn, cell)(H, H)
        fm = getattr(fused_rnn, cell)(H, H)
        fm.load_state_dict(ref.state_dict())
        x = torch.randn(T, 1, H)
        x2 = x.reshape(T, H)
        w = ref.weight_ih_l0.detach()
        rounds = {k: [] for k in ("nn", "fused", "floor", "proj")}
        with torch.no_grad():
            for _ in range(5):
                rounds["nn"].append(med(lambda: ref(x)))
                rounds["fused"].append(med(lambda: fm(x)))
                rounds["floor"].append(min(lib.floor_step_us(H, G, 2, T, 1) for _ in range(3)) * T)
                rounds["proj"].append(med(lambda: torch.mm(x2, w.t())))
        m = {k: statistics.median(v) for k, v in rounds.items()}
        ratios = [a / b for a, b in zip(rounds["nn"], rounds["fused"])]
        bound = m["floor"] + m["proj"]
        print(f"| {cell} | {H} | {T} | {m['nn']:.0f} | {m['fused']:.0f} | {m['floor']:.0f} | {m['proj']:.0f} | "
              f"{bound:.0f} | {m['fused'] / bound:.2f} | {m['nn'] / m['fused']:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | "
              f"{m['nn'] / bound:.2f}x |", flush=True)
