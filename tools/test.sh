#!/usr/bin/env bash
# The test command (README): the library matches the notebooks, the notebooks are clean, the linter passes, every
# notebook runs, and the pytest suite passes. Run from anywhere inside the repository, with the dev extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export ADAPTBOOK_MODE="${ADAPTBOOK_MODE:-quick}"   # quick even on a GPU machine (where the default is full)

echo "== nbdev-export: the library must match the notebooks"
nbdev-export
if [ -n "$(git status --porcelain -- adaptbook)" ]; then
  git status --porcelain -- adaptbook; git --no-pager diff --stat -- adaptbook
  echo "FAIL: nbdev-export changed adaptbook/ (edit the notebook, not the .py, then export and commit)"; exit 1
fi

echo "== nbdev-clean: the notebooks must be clean"
nbdev-clean
if [ -n "$(git status --porcelain -- nbs)" ]; then
  git status --porcelain -- nbs
  echo "FAIL: nbdev-clean changed notebooks (run nbdev-clean and commit)"; exit 1
fi

echo "== ruff: lint the library, the tests, the bench scripts and the tools"
ruff check adaptbook tests bench tools

echo "== nbdev-test: every notebook (quick mode), timed"
start=$(date +%s)
# nbdev-test runs two notebooks at once (one per core); one torch thread each keeps them from spin-waiting on each other
mkdir -p test-artifacts
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nbdev-test --timing --do-print 2>&1 | tee test-artifacts/nbdev-test.log
echo "notebooks: $(( $(date +%s) - start )) s"

echo "== pytest (two workers, one per core; a test file stays on one worker, so its module fixtures run once)"
start=$(date +%s)
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m pytest tests/ -q -rs -n 2 --dist loadfile
echo "pytest: $(( $(date +%s) - start )) s"

echo "== regression guard and figures: headline numbers against tests/expected, every saved figure's layout (the notebooks above filled the results cache)"
python -m pytest tests/ -q -rs -m "regression or figures"
