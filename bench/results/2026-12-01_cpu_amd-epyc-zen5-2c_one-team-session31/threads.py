"""Several Python threads calling fused_rnn modules at once on 2 intra-op threads: calls a second
per thread and in all, with _C._set_cpu_one_team on (a run that starts while another call's team
runs goes on its own thread) and off (every run forms its team), the settings alternating, 3
rounds of 4 s each. argv: cell dtype H B T threads."""
import platform, statistics, sys, threading, time
import torch, fused_rnn
torch.set_num_threads(2)
cell, dtype, H, B, T, n = sys.argv[1], getattr(torch, sys.argv[2]), *map(int, sys.argv[3:7])
print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; torch {torch.__version__}; Python {platform.python_version()}; "
      f"{cell} {dtype} H={H} B={B} T={T}; {n} Python threads; intra-op threads 2", flush=True)
torch.manual_seed(0)
models = [getattr(fused_rnn, cell)(H, H).to(dtype) for _ in range(n)]
xs = [torch.randn(T, B, H).to(dtype) for _ in range(n)]
with torch.no_grad():
    alone = [m(x)[0] for m, x in zip(models, xs)]
def run(seconds):
    counts, wrong = [0] * n, []
    stop = time.perf_counter() + seconds
    def work(k):
        with torch.no_grad():
            while time.perf_counter() < stop:
                out = models[k](xs[k])[0]
                if not torch.equal(out, alone[k]):
                    wrong.append(k)
                counts[k] += 1
    ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not wrong, wrong
    return sum(counts) / seconds
rates = {True: [], False: []}
for rnd in range(3):
    for on in ((True, False) if rnd % 2 == 0 else (False, True)):
        fused_rnn._C._set_cpu_one_team(on)
        before = fused_rnn._C._cpu_forward_calls()["runs_alone_beside_a_team"]
        r = run(4.0)
        alone_runs = fused_rnn._C._cpu_forward_calls()["runs_alone_beside_a_team"] - before
        rates[on].append(r)
        print(f"one_team={on}: {r:.1f} calls/s in all ({alone_runs} runs alone)", flush=True)
fused_rnn._C._set_cpu_one_team(True)
a, b = statistics.median(rates[True]), statistics.median(rates[False])
print(f"median calls/s: one team {a:.1f}, every run its team {b:.1f}, ratio {a / b:.2f}x")
