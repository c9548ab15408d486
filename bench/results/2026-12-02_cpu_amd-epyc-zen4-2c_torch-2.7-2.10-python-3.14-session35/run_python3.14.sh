#!/bin/bash
# fused_rnn on Debian sid: Python 3.14, g++ 16, torch 2.15.0 (PyPI); CPU build, then the suite.
cd /root/repo
. /root/venv314/bin/activate
export PYTHONPATH=/root/repo/python
L=/root/logs; mkdir -p $L
git rev-parse --short HEAD > $L/code.txt
{ python --version; g++ --version | head -1; pip list 2>/dev/null | grep -iE '^(torch|setuptools|numpy|pytest|ninja|pybind11) '; grep PRETTY /etc/os-release; } > $L/versions.txt
{ date -u; FUSED_RNN_CUDA=0 MAX_JOBS=2 python setup.py build_ext --inplace; echo "exit $?"; date -u; } > $L/build.txt 2>&1
python -c "import fused_rnn; print(fused_rnn.build_info())" > $L/build_info.txt 2>&1
[ "$1" = build ] && exit 0
{ date -u; python -m pytest -q -p no:cacheprovider tests 2>&1; echo "exit $?"; date -u; } > $L/tests.log 2>&1
