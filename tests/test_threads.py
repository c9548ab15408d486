"""Modules called from several Python threads at once (a server's worker pool, a data loader
running a model): every call gives what it gives alone, and none waits forever. The calls run in
a subprocess with a time limit, so a deadlock fails the test instead of hanging the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, threading, torch, fused_rnn
    torch.manual_seed(0)
    # bfloat16 and float16 weights go through the kept casts and their cache (one lock, shared by
    # every call), float32 ones through the panel cache; a module shared by the threads and one
    # of each thread's own; training calls beside inference ones.
    shared = [fused_rnn.LSTM(24, 40).to(torch.bfloat16), fused_rnn.GRU(24, 40).to(torch.float16),
              fused_rnn.LSTM(24, 40, num_layers=2, bidirectional=True), fused_rnn.LSTMCell(24, 40).to(torch.bfloat16)]
    inputs = [torch.randn(12, 6, 24).to(torch.bfloat16), torch.randn(12, 6, 24).to(torch.float16),
              torch.randn(12, 6, 24), torch.randn(6, 24).to(torch.bfloat16)]
    with torch.no_grad():
        alone = [m(x)[0] for m, x in zip(shared, inputs)]
    wrong = []

    def infer(k):
        own = fused_rnn.LSTM(24, 40).to(torch.bfloat16)
        own.load_state_dict(shared[0].state_dict())
        for i in range(int(sys.argv[1])):
            j = (i + k) % len(shared)
            with torch.no_grad():
                got = (shared[j] if i % 3 else own if j == 0 else shared[j])(inputs[j])[0]
            if not torch.equal(got, alone[j]):
                wrong.append((k, i, j))

    def train(k):
        m = fused_rnn.LSTM(24, 40).to(torch.bfloat16)
        for i in range(int(sys.argv[1]) // 4):
            m(inputs[0])[0].float().sum().backward()
            m.weight_hh_l0.data.add_(1e-3)  # the casts and panels are stale after every step

    threads = [threading.Thread(target=infer, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=train, args=(0,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("wrong", wrong[:5], len(wrong))
    sys.exit(1 if wrong else 0)
""")


def _run(calls: int, timeout: float) -> None:
    try:
        p = subprocess.run([sys.executable, "-c", SCRIPT, str(calls)], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"concurrent calls from Python threads did not finish in {timeout:g} s "
                             "(a deadlock)") from None
    assert p.returncode == 0, p.stdout + p.stderr


def test_concurrent_calls_from_python_threads():
    _run(200, 180)


def test_concurrent_calls_never_deadlock():
    """Many short runs: the deadlock this guards against (a thread holding the cache's lock
    waiting for the GIL, another holding the GIL in _kept_cast waiting for the lock) struck in
    about one run in two of 20 calls a thread before the fix."""
    for _ in range(6):
        _run(24, 60)


ONE_TEAM = textwrap.dedent("""
    import sys, threading, torch, fused_rnn
    torch.set_num_threads(2)
    fused_rnn._C._set_cpu_team_min_flops(0)
    fused_rnn._C._set_cpu_one_team(sys.argv[1] == "on")
    torch.manual_seed(0)
    long_model, short_model = fused_rnn.LSTM(64, 128), fused_rnn.GRU(16, 32)
    long_x, short_x = torch.randn(3000, 4, 64), torch.randn(5, 3, 16)
    with torch.no_grad():
        want_long, want_short = long_model(long_x)[0], short_model(short_x)[0]
    got, started = {}, threading.Event()

    def long_call():
        started.set()
        with torch.no_grad():
            got["long"] = long_model(long_x)[0]

    before = fused_rnn._C._cpu_forward_calls()["runs_alone_beside_a_team"]
    t = threading.Thread(target=long_call)
    t.start()
    started.wait()
    wrong = 0
    with torch.no_grad():
        while t.is_alive():
            wrong += not torch.equal(short_model(short_x)[0], want_short)
    t.join()
    alone = fused_rnn._C._cpu_forward_calls()["runs_alone_beside_a_team"] - before
    print(alone, wrong, torch.equal(got["long"], want_long))
""")


def test_a_run_beside_another_calls_team_goes_alone():
    """While one call's thread team runs a long sequence, calls from another Python thread run on
    their own thread instead of forming a second team on the same cores (where both would spin
    at barriers for threads the other holds); with the switch off they form their teams. The
    results are the same either way (a run's results never depend on its number of threads)."""
    for setting, alone_expected in (("on", True), ("off", False)):
        p = subprocess.run([sys.executable, "-c", ONE_TEAM, setting], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        alone, wrong, long_equal = p.stdout.split()
        assert (int(alone) > 0) == alone_expected, (setting, alone)
        assert (wrong, long_equal) == ("0", "True")
