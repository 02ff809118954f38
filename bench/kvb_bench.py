"""Benchmark of the KVB chapter: the cost of adapting (stream) vs retraining (i.i.d. on all classes seen so far, after
every task), as ratios. Prints; asserts nothing about time.
usage: python bench/kvb_bench.py [--mode quick|full] [--seed 0]"""
import argparse, time

from adaptbook.data import resolve
from adaptbook.kvb import PCAEncoder, experiment

ap = argparse.ArgumentParser(); ap.add_argument('--mode', default='quick'); ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()
n_tr, n_te = (8000, 2000) if a.mode == 'quick' else (60000, 10000)
Xtr, ytr, Xte, yte = resolve('mnist')
Xtr, ytr, Xte, yte = Xtr[:n_tr], ytr[:n_tr], Xte[:n_te], yte[:n_te]
t = time.perf_counter(); enc = PCAEncoder(64).fit(Xtr); emb = (enc(Xtr), ytr, enc(Xte), yte)
print(f'PCA-64 embeddings of {n_tr}+{n_te} images: {time.perf_counter() - t:.2f} s (computed once, shared)')
tasks = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]

stream = experiment(emb, tasks=tasks, encoder='identity', methods=('kvb', 'linear'), seed=a.seed)
retrain = {'examples': 0, 'seconds': 0.0}
for t in range(1, len(tasks) + 1):                     # retrain KVB values on all classes seen so far, after each task
    r = experiment(emb_t := (emb[0][emb[1] < 2 * t], emb[1][emb[1] < 2 * t], emb[2][emb[3] < 2 * t],
                             emb[3][emb[3] < 2 * t]), tasks=[list(range(2 * t))], encoder='identity',
                   methods=('kvb_iid',), seed=a.seed)[-1]
    retrain['examples'] += r['examples']; retrain['seconds'] += r['seconds']; final_retrain = r['acc_all']
kvb = stream.where(method='kvb')[-1]; lin = stream.where(method='linear')[-1]
print(f"KVB stream: acc {kvb['acc_all']:.3f}, {kvb['examples']} examples, {kvb['seconds']:.2f} s, "
      f"state {kvb['state_bytes'] / 1024:.0f} KiB")
print(f"KVB retrained after every task: final acc {final_retrain:.3f}, {retrain['examples']} examples, "
      f"{retrain['seconds']:.2f} s")
print(f"ratios adapt/retrain: examples {kvb['examples'] / retrain['examples']:.3f}, "
      f"seconds {kvb['seconds'] / retrain['seconds']:.3f}, accuracy {kvb['acc_all'] / final_retrain:.3f}")
print(f"linear probe stream: acc {lin['acc_all']:.3f} ({lin['acc_all'] / final_retrain:.3f} of retrained KVB)")
