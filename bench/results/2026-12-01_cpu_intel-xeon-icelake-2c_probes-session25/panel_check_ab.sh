# The panel cache's check, head (weight compared with a kept copy, in parallel 64 KB chunks, then
# the panels read by the steps) against new (each tile's panel compared with its rows of the
# weight by the thread that reads it): two builds of fused_rnn in /tmp/p25/pkg_{head,new},
# processes alternated, each running harness_like.py (torch.nn, fused, a torch.nn copy
# interleaved as the matrix harness does; us a step, medians of 200 rounds) and the session-24
# b1_cold_calls.py (fused warm, right after torch.nn's call, after 64 MB written).
source /work/venv/bin/activate
here=$(dirname "$0")
date; uptime
for case in "$@"; do
  for r in 1 2 3; do
    for v in head new; do
      echo -n "$v "; PYTHONPATH=/tmp/p25/pkg_$v python $here/harness_like.py $case 200
    done
  done
done
for r in 1 2 3; do
  for v in head new; do
    echo -n "$v "; PYTHONPATH=/tmp/p25/pkg_$v python $here/../2026-12-01_cpu_intel-xeon-icelake-2c_probes-session24/b1_cold_calls.py LSTM 1 256 50
  done
done
uptime
