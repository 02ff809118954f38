"""K-prior cost on full a7a add-data (16,100 rows, 10 % arrive as new data; logistic regression, delta = 5).

Finds the smallest memory whose test accuracy is within 0.2 points of Batch (retraining on everything), and prints,
at that memory, how many examples K-prior processed and how long it took, as ratios against Batch.
Ratios are printed, never asserted: wall time on a shared machine is noisy.

usage: python bench/kprior_cost.py [--seed 0] [--tol 0.002]"""
import argparse, time

import torch

from adaptbook.data import resolve
from adaptbook.core import reach
from adaptbook.kprior import experiment

GRID = (1.0, 0.5, 0.2, 0.1, 0.07, 0.05, 0.02, 0.01, 0.005, 0.002)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tol', type=float, default=0.002, help='accuracy tolerance vs Batch (0.002 = 0.2 points)')
    a = p.parse_args()
    data = resolve('a7a')
    t = time.perf_counter()
    res = experiment(data, memory=GRID, methods=('kprior', 'batch'), seed=a.seed, task='add', model='logreg',
                     delta=5.0, new_frac=0.1)
    b = res.where(method='batch')[0]
    print(f"full a7a add-data, seed {a.seed}: Batch acc {b['acc']:.4f}, {b['examples']} examples, {b['seconds']:.3f} s"
          f" (sweep took {time.perf_counter() - t:.1f} s, {torch.get_num_threads()} torch threads)")
    print(f"{'memory':>7s} {'mem':>6s} {'acc':>7s} {'Δacc pt':>8s} {'weight_err':>10s} {'examples':>9s} "
          f"{'ex. ratio':>9s} {'seconds':>8s} {'time ratio':>10s}")
    ok = []
    for r in sorted(res.where(method='kprior'), key=lambda r: -r['memory']):
        d = (r['acc'] - b['acc']) * 100
        print(f"{r['memory']:7.3f} {r['mem_size']:6d} {r['acc']:7.4f} {d:8.2f} {r['weight_err']:10.3g} "
              f"{r['examples']:9d} {b['examples'] / r['examples']:8.1f}× {r['seconds']:8.3f} "
              f"{b['seconds'] / r['seconds']:9.1f}×")
        if r['acc'] >= b['acc'] - a.tol: ok.append(r)
    if not ok:
        print(f'no memory size is within {a.tol * 100:.1f} points of Batch'); return
    r = min(ok, key=lambda r: r['memory'])
    print(f"\nsmallest memory within {a.tol * 100:.1f} pt of Batch: {r['memory']:g} ({r['mem_size']} of "
          f"{res.meta['n_old']} old points), acc {r['acc']:.4f} vs {b['acc']:.4f}")
    print(f"examples processed, retrain / adapt: {b['examples']} / {r['examples']} = "
          f"{b['examples'] / r['examples']:.1f}×")
    print(f"wall time, retrain / adapt: {b['seconds']:.3f} s / {r['seconds']:.3f} s = {b['seconds'] / r['seconds']:.1f}×")
    hit = reach(r['curve_examples'], r['curve_acc'], 0.005, target=b['acc'])
    if hit is not None:
        print(f"its learning curve is within 0.5 pt of Batch's final accuracy after {hit[0]:.0f} examples: "
              f"{hit[0] / b['examples']:.1%} of Batch's {b['examples']}")

if __name__ == '__main__': main()
