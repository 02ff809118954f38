"""How the torch thread count changes wall time (and results) for the book's small models.

Runs the same quick experiments in fresh processes with ADAPTBOOK_THREADS = 1, 2, ..., os.cpu_count() and prints
the wall time and its ratio to one thread, and whether the rows are identical to the one-thread rows. This is the
measurement behind `core.default_threads()` = 1. Run: `python bench/threads_bench.py [--repeat 2]`.
"""
import argparse, json, os, subprocess, sys, time

WORK = {
    'piggyback': "from adaptbook import piggyback as m; r = m.experiment('digits', thresholds=(5e-3,), epochs=4)",
    'kvb': "from adaptbook import kvb as m; r = m.experiment('digits', keys=(64,), codebooks=16, pca_dim=32, "
           "n_train=1200, n_test=300)",
    'kprior': "from adaptbook import kprior as m; r = m.experiment('digits', memory=(0.1,), model='mlp', steps=300)",
}

def once(name: str, threads: int) -> tuple[float, str]:
    code = WORK[name] + "; import json; print('ROWS' + json.dumps(r.stable()))"
    env = dict(os.environ, ADAPTBOOK_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, out.split('ROWS', 1)[1]

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--repeat', type=int, default=1)
    p.add_argument('--work', nargs='*', default=list(WORK))
    a = p.parse_args()
    counts = sorted({1, 2, os.cpu_count() or 1})
    print(f'{os.cpu_count()} CPUs; seconds per run (best of {a.repeat}), ratio to 1 thread, rows equal to 1 thread\'s')
    for name in a.work:
        base_t, base_rows = None, None
        for n in counts:
            t, rows = min((once(name, n) for _ in range(a.repeat)), key=lambda x: x[0])
            base_t, base_rows = (t, rows) if n == 1 else (base_t, base_rows)
            same = json.loads(rows) == json.loads(base_rows) if rows.find('NaN') < 0 else rows == base_rows
            print(f'{name:10s} threads={n:2d}  {t:6.1f} s  x{t / base_t:4.2f}  same rows: {same}')

if __name__ == '__main__':
    main()
