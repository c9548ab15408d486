# The panel check before (head: k-blocks packed into an L1 buffer, memcmp) and after (new: on
# AVX-512, 16 x 16 blocks transposed in registers and XOR-compared, rows prefetched): two builds
# in /tmp/p26/pkg_{head,new}, processes alternated, each running session 25's harness_like.py
# (torch.nn, fused, a torch.nn copy interleaved; us a step, medians of 200 rounds).
source /work/venv/bin/activate
here=$(dirname "$0")
date; uptime
for case in "$@"; do
  for r in 1 2 3; do
    for v in head new; do
      echo -n "$v "; PYTHONPATH=/tmp/p26/pkg_$v python $here/../2026-12-01_cpu_intel-xeon-icelake-2c_probes-session25/harness_like.py $case 200
    done
  done
done
uptime
