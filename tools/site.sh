#!/usr/bin/env bash
# Build the tutorial site here, without Quarto: nbdev's processed notebooks (_proc/, the input Quarto would get) rendered
# to HTML with nbconvert into _site/ (gitignored), one sidebar in nbs/sidebar.yml's order, landing page first, maths by
# the MathJax already on the machine (Debian's libjs-mathjax; no network). Open _site/index.html, or serve it:
#   python -m http.server -d _site
# Where Quarto exists, `nbdev-docs` stays the production renderer (same nbs/sidebar.yml, kept: custom_sidebar = true).
# Options are passed to tools/site.py (--out DIR, --no-proc, --workers N). Check it in a browser: pytest tests/test_site.py
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/javascript/mathjax/MathJax.js ] && ! python -c "import jupyter_server_mathjax" 2>/dev/null; then
  echo "site: no MathJax on this machine: apt-get install libjs-mathjax"; exit 1
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
start=$(date +%s)
python tools/site.py "$@"
echo "site build: $(( $(date +%s) - start )) s"
