"""Zapping: cost of adapting (a fresh head on a pre-trained encoder) against retraining from scratch, the one-off
pre-training cost, and the widget's redraw times. Prints ratios; asserts nothing about time.

Run: OMP_NUM_THREADS=1 ADAPTBOOK_DATA=../shared/data python bench/zapping_bench.py"""
import time

import matplotlib
matplotlib.use('Agg')
import torch

from adaptbook.zapping import experiment, widget

torch.set_num_threads(1)


def main():
    t = time.perf_counter()
    res = experiment('omniglot', zap_every=(0, 1), pretraining=('iid',), seed=0)
    print(f'experiment (quick, seed 0, iid): {time.perf_counter() - t:.1f} s; encoders cached: {res.meta["cached"]}')
    scratch = next(r for r in res if r['role'] == 'retrain')
    print(f"{'method':18} {'zap':>4} {'acc':>6} {'examples':>9} {'steps':>6} {'seconds':>8}  examples/retrain  s/retrain")
    for r in res:
        print(f"{r['method']:18} {str(r['zap_every']):>4} {r['acc']:6.3f} {r['examples']:9d} {r['steps']:6d} "
              f"{r['seconds']:8.3f}  {r['examples'] / scratch['examples']:16.3f}  {r['seconds'] / scratch['seconds']:9.3f}")
    print('(setup rows: the one-off pre-training that every transfer from that encoder reuses)')

    import adaptbook.widgets  # noqa: F401  (ipywidgets import outside the timing)
    t = time.perf_counter()
    ex = widget()
    print(f'widget build: {time.perf_counter() - t:.1f} s (its own, smaller encoders: trained on the first run, then cached)')
    for z, what in ((2, 'new setting (pre-trains once)'), (1, 'cached setting'), (2, 'cached setting')):
        t = time.perf_counter()
        ex.set(zap_every=z)
        print(f'widget zap_every={z}: {time.perf_counter() - t:.2f} s  [{what}]')


if __name__ == '__main__':
    main()
