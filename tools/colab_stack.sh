#!/usr/bin/env bash
# A Colab-like stack (issue #14): a fresh venv with the versions Colab ships, adaptbook installed WITHOUT the dev
# extra, then the widgets notebook and one small chapter executed headless in a real kernel (nbclient).
# Pins, from googlecolab/backend-info pip-freeze.gpu.txt (commit a724079, 2026-08-19; os-info-gpu.txt: Python 3.13.15):
#   ipywidgets==7.7.1 ipython==7.34.0 ipykernel==6.17.1 matplotlib==3.10.0 numpy==2.1.3 scikit-learn==1.6.1
#   h5py==3.16.0 tqdm==4.67.3 notebook==6.5.7 widgetsnbextension==3.6.10 jupyterlab_widgets==3.0.16
#   fastcore==2.2.12 (Colab has fastcore, not nbdev) torch==2.11.0+cu128 torchvision==0.26.0+cu128
# NOT pinned here: Python (this machine's python3, not 3.13); torch/torchvision (the CUDA builds are not on this
# index: the local CPU pair .ci/run uses, torch 2.14.1 + torchvision 0.29.1); nbclient (Colab runs cells with its own
# front end, not nbclient). Usage: bash tools/colab_stack.sh   (COLAB_VENV=folder to choose the venv, default /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
VENV="${COLAB_VENV:-/tmp/adaptbook-colab-venv}"
export PYDEVD_DISABLE_FILE_VALIDATION=1 PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
PINS="ipywidgets==7.7.1 ipython==7.34.0 ipykernel==6.17.1 matplotlib==3.10.0 numpy==2.1.3 scikit-learn==1.6.1 h5py==3.16.0 tqdm==4.67.3 notebook==6.5.7 widgetsnbextension==3.6.10 jupyterlab_widgets==3.0.16 fastcore==2.2.12 torch==2.14.1 torchvision==0.29.1"
python3 -m venv --clear "$VENV"
. "$VENV/bin/activate"
printf '%s\n' $PINS > "$VENV/colab-constraints.txt"
quiet pip install -q $PINS
quiet pip install -q -c "$VENV/colab-constraints.txt" . nbclient      # adaptbook with no dev extra; pins must hold
python - <<'PY'
import importlib.metadata as md
want = dict(l.strip().split('==') for l in open(__import__('os').environ['VIRTUAL_ENV'] + '/colab-constraints.txt') if l.strip())
got = {k: md.version(k) for k in want}
bad = {k: (want[k], got[k]) for k in want if got[k].split('+')[0] != want[k]}
assert not bad, f'pins moved: {bad}'
for dev in ('nbdev', 'jupyterlab', 'ipympl', 'pytest'):
    try: md.version(dev); raise SystemExit(f'{dev} is installed: adaptbook must run without the dev extra')
    except md.PackageNotFoundError: pass
print('colab stack:', ', '.join(f'{k} {v}' for k, v in got.items()), '| adaptbook', md.version('adaptbook'))
PY
echo "install: $(( $(date +%s) - t0 )) s"
python - <<'PY'
import os, time, nbformat
from nbclient import NotebookClient
for nb_path in ['nbs/02_widgets.ipynb', 'nbs/05_intro.ipynb']:
    t = time.perf_counter()
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': 'nbs'}}).execute()
    errs = [o for c in nb.cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errs, errs
    print(f'{nb_path}: ran on the Colab-like stack in {time.perf_counter() - t:.1f} s')
PY
echo "colab stack total: $(( $(date +%s) - t0 )) s"
