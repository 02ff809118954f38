#!/usr/bin/env bash
# Make (or reuse) the virtual environment .venv and install adaptbook into it. Used by `make run` and `make test`
# (README, "Set up and run"). Usage: bash tools/setup.sh [run|dev]
#   run: adaptbook and its runtime dependencies;  dev: plus the dev extra, Debian's Chromium and MathJax (tests).
# torch: kept if the venv already has one that imports with torchvision. Otherwise, where there is no NVIDIA GPU (no
# `nvidia-smi`) and PyTorch's CPU index answers, the CPU-only build from it (about 200 MB instead of several GB of CUDA
# libraries); else, or if that pair does not import, whatever `pip install torch torchvision` chooses (on a machine
# with no GPU, said first with its size and how to avoid it). ADAPTBOOK_TORCH="torch==X
# torchvision==Y" pins a pair instead (CI uses the pair on its local disk). ADAPTBOOK_VENV names another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-run}"
case "$what" in run|dev) ;; *) echo "tools/setup.sh: error: give 'run' or 'dev', not '$what'" >&2; exit 2;; esac
VENV="${ADAPTBOOK_VENV:-.venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
command -v python3 >/dev/null || { echo "tools/setup.sh: error: python3 is not on PATH (Python 3.10+ is needed)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "tools/setup.sh: error: $(python3 --version) is too old: Python 3.10+ is needed" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || { echo "== making $VENV"; python3 -m venv "$VENV"; }
. "$VENV/bin/activate"

torch_ok() { python -c 'import torch, torchvision' 2>/dev/null; }
cpu_index_reachable() {
  python - <<'PY' 2>/dev/null
import urllib.request
urllib.request.urlopen('https://download.pytorch.org/whl/cpu/torch/', timeout=8)
PY
}
if ! torch_ok; then
  if [ -n "${ADAPTBOOK_TORCH:-}" ]; then
    echo "== torch: $ADAPTBOOK_TORCH (ADAPTBOOK_TORCH)"; quiet pip install -q $ADAPTBOOK_TORCH
  elif ! command -v nvidia-smi >/dev/null 2>&1; then
    if cpu_index_reachable; then
      echo "== torch: no NVIDIA GPU: the CPU-only build from PyTorch's CPU index (about 200 MB)"
      quiet pip install -q --index-url https://download.pytorch.org/whl/cpu torch torchvision || true
    else
      cat <<'MSG'
== torch: this machine has no NVIDIA GPU, but PyTorch's CPU index (download.pytorch.org/whl/cpu) cannot be reached
   from here. The package registry offers only CUDA builds of torch for Linux, so pip's choice comes next: torch and
   torchvision with NVIDIA's CUDA libraries, about 5.5 GB in .venv (3.2 GB of them CUDA libraries this machine cannot
   use; measured with torch 2.14.1) and 2-4 minutes. To avoid it, stop now (Ctrl-C) and either
     - reuse a torch this machine already has: python3 -m venv --system-site-packages .venv, then make again, or
     - name a pair you can reach: ADAPTBOOK_TORCH="torch==X torchvision==Y" make ...
MSG
    fi
  fi
  if ! torch_ok; then                      # not tried, or a pair that does not import together: pip's own choice
    quiet pip uninstall -q -y torch torchvision >/dev/null 2>&1 || true
    echo "== torch: pip's choice"; quiet pip install -q torch torchvision
  fi
  torch_ok || { echo "tools/setup.sh: error: torch and torchvision do not import together in $VENV; pin a matching pair," \
                     "e.g. ADAPTBOOK_TORCH=\"torch==2.14.1 torchvision==0.29.1\" make test" >&2; exit 1; }
fi
if [ "$what" = dev ]; then quiet pip install -q -e ".[dev]"; else quiet pip install -q -e .; fi
python -c "import torch, torchvision, adaptbook; print('adaptbook', adaptbook.__version__, '| torch', torch.__version__, '| torchvision', torchvision.__version__, '| CUDA', torch.cuda.is_available())"

if [ "$what" = dev ] && { ! command -v chromium >/dev/null 2>&1 || [ ! -f /usr/share/javascript/mathjax/MathJax.js ]; }; then
  echo "== Debian's chromium (browser tests) and libjs-mathjax (the site's maths)"
  if [ "$(id -u)" = 0 ]; then apt-get update -q >/dev/null && apt-get install -y -q chromium libjs-mathjax >/dev/null
  elif command -v sudo >/dev/null; then sudo apt-get update -q >/dev/null && sudo apt-get install -y -q chromium libjs-mathjax >/dev/null
  else echo "tools/setup.sh: warning: cannot install chromium and libjs-mathjax (not root, no sudo): the browser tests will fail" >&2; fi
fi
