"""K-prior widget redraw times on the 2-D toy: a new setting (reruns K-prior and Replay) and a cached one.

Printed, never asserted: wall time on a shared machine is noisy. Targets on 2 CPU cores: new <= 5 s, cached <= 0.5 s.

usage: OMP_NUM_THREADS=1 python bench/kprior_widget.py"""
import time

import matplotlib
matplotlib.use('Agg')

from adaptbook.kprior import widget

def timed(ex, **knobs):
    t = time.perf_counter()
    ex.set(**knobs)
    return time.perf_counter() - t

def main():
    t = time.perf_counter()
    ex = widget()
    print(f"first draw (Batch + K-prior + Replay): {time.perf_counter() - t:.2f} s")
    new = [timed(ex, memory=m) for m in (0.02, 0.5)] + [timed(ex, select='random')] + [timed(ex, task='remove')]
    cached = [timed(ex, memory=m) for m in (0.1, 0.02)] + [timed(ex, task='add')]
    print(f"new setting: mean {sum(new) / len(new):.2f} s, max {max(new):.2f} s (target <= 5 s)")
    print(f"cached setting: mean {sum(cached) / len(cached):.2f} s, max {max(cached):.2f} s (target <= 0.5 s)")

if __name__ == '__main__': main()
