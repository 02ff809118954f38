"""Benchmark of the KVB chapter: the cost of adapting (KVB in the stream) vs retraining (the same bottleneck's values
from zero on all classes seen so far, after every task), in examples and in seconds side by side, from the rows
`experiment` returns; the i.i.d. references; and the widget's redraw times. Prints; asserts nothing about time.
usage: python bench/kvb_bench.py [--mode quick|full] [--seed 0] [--no-widget]"""
import argparse
import time

from adaptbook.kvb import experiment, widget

ap = argparse.ArgumentParser()
ap.add_argument('--mode', default='quick')
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--no-widget', action='store_true')
a = ap.parse_args()
kw = {} if a.mode == 'quick' else dict(keys=(1024,))
t = time.perf_counter()
res = experiment('mnist', mode=a.mode, seed=a.seed, **kw)
print(f"experiment ({res.meta['encoder']} encoder, keys on {res.meta['key_source']}): "
      f"{time.perf_counter() - t:.1f} s wall")
r = {x['method']: x for x in res}
kvb, rt, lin = r['kvb'], r['retrain'], r['linear']
print(f"setup (one-off): features {r['encoder']['seconds']:.2f} s, key placement {r['key_init']['examples']} examples "
      f"{r['key_init']['seconds']:.2f} s")
print(f"KVB stream: acc {kvb['acc']:.3f}, {kvb['examples']} examples, {kvb['seconds']:.2f} s, "
      f"network {kvb['model_bytes'] / 1024:.0f} KiB, kept besides it {kvb['state_bytes'] / 1024:.0f} KiB")
print(f"KVB retrained from zero after every task: acc {rt['acc']:.3f}, {rt['examples']} examples, {rt['seconds']:.2f} s, "
      f"kept {rt['state_bytes'] / 1024:.0f} KiB (the stored features it retrains on)")
print(f"ratios adapt/retrain: examples {kvb['examples'] / rt['examples']:.3f}, "
      f"seconds {kvb['seconds'] / rt['seconds']:.3f}, accuracy {kvb['acc'] / rt['acc']:.3f}")
print(f"KVB i.i.d.: acc {r['kvb_iid']['acc']:.3f}; streamed linear probe {lin['acc']:.3f}, MLP {r['mlp']['acc']:.3f}")
for m in ('linear_iid', 'mlp_iid'):
    x = r[m]
    print(f"{m}: acc {x['acc']:.3f}, converged {x['converged']} ({x['ref_iters']} iterations/epochs), "
          f"{x['examples']} examples, {x['seconds']:.2f} s")
nc, rp = r['ncm'], r['replay']
print(f"nearest class mean: acc {nc['acc']:.3f}, {nc['examples']} examples, network {nc['model_bytes'] / 1024:.1f} KiB")
print(f"replay at KVB's bytes: acc {rp['acc']:.3f}, buffer {rp['buffer']} examples, {rp['examples']} examples, "
      f"network + buffer {(rp['model_bytes'] + rp['state_bytes']) / 1024:.0f} KiB (KVB's network {kvb['model_bytes'] / 1024:.0f} KiB)")
if not a.no_widget:
    t = time.perf_counter()
    w = widget()
    print(f'widget, first draw (KVB + its retraining): {time.perf_counter() - t:.2f} s')
    for keys in (4, 256, 64, 4):
        w.set(keys=keys)
        print(f'widget, keys={keys}: redraw {w.seconds:.2f} s ({len(w.cache)} settings cached)')
    w.set(topk=2)
    print(f'widget, topk=2: redraw {w.seconds:.2f} s')
