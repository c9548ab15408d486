#!/usr/bin/env bash
# torch versions untried: build fused_rnn (CPU) against each and run the whole suite.
set -u
R=/tmp/vt; export PYTHONPATH=/tmp/vt/repo/python; mkdir -p $R/logs; rm -rf $R/repo; git clone -q /work/main $R/repo; cd $R/repo
echo "code $(git rev-parse --short HEAD)" > $R/logs/code.txt
for v in "$@"; do
  L=$R/logs/torch$v; mkdir -p $L
  python3 -m venv $R/venv-$v; . $R/venv-$v/bin/activate
  { date -u; PIP_CONFIG_FILE=/dev/null python -m pip install --quiet torch==$v && python -m pip install --quiet setuptools wheel ninja pybind11 pytest numpy tqdm; date -u; } > $L/install.txt 2>&1
  python -m pip list 2>/dev/null | grep -iE "^(torch|setuptools|numpy|pytest|ninja|pybind11) " > $L/versions.txt
  rm -rf build python/fused_rnn/_C*.so
  { date -u; FUSED_RNN_CUDA=0 MAX_JOBS=2 python setup.py build_ext --inplace; echo "exit $?"; date -u; } > $L/build.txt 2>&1
  python -c "import fused_rnn; print(fused_rnn.build_info())" > $L/build_info.txt 2>&1
  { date -u; python -m pytest -q -p no:cacheprovider tests 2>&1; echo "exit $?"; date -u; } > $L/tests.log 2>&1
  tail -3 $L/tests.log
  deactivate; rm -rf $R/venv-$v
done
echo ALLDONE > $R/logs/done
