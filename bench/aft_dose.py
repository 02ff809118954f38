"""AFT's dose-response: how much AFT gains over STL, and over the control that knows nothing (the raw pixels as the
teacher's features, on the same rows), as the teacher's features align more and more with the target's labels.

Teachers, weakest to strongest on MNIST: the noise and pixels controls; EfficientNet-Lite0 trained on ImageNet
(`aft.IMAGENET_TEACHER`: natural photographs, never a glyph); the zoo's weak, default and broad teachers (clothes,
characters, and for the broad one USPS digits); MLPs trained here on 250, 1,000 and 4,000 labelled MNIST images
disjoint from the student's (`teacher='mlp'`, `teacher_pool`). For each: the kernel-label alignment of its features,
the linear probe on them, AFT − STL and AFT − (AFT with the pixels control), paired seed by seed on the same labelled
rows, mean ± sd and how many seeds are ahead. β and the learning rate are chosen on validation in every run. The
student is the chapter's: an MLP pre-trained on Fashion-MNIST. Printed, never asserted.

`--out FILE` also writes the per-seed numbers as `Results` JSON (one row per teacher and seed) with the provenance
(adaptbook's commit, torch, CPU, threads) and the AFT code's digest (`core.run_digest('aft')`): the AFT chapter draws
its dose-response from `adaptbook/measured/aft_dose.json` (`aft.dose_response`), written this way, because five seeds
of nine teachers take minutes, beyond its quick-mode budget.

usage: python bench/aft_dose.py [--seeds 5] [--n-labels 500] [--pools 250 1000 4000] [--mode quick] [--out FILE]"""
import argparse, time
from pathlib import Path

import numpy as np

from adaptbook import aft


def rows(res, method, teacher=None):
    "{seed: row} of `method` chosen on validation (for `teacher`, if given)."
    return {r['seed']: r for r in res if r['method'] == method and r.get('chosen')
            and (teacher is None or r.get('teacher') == teacher)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, default=5)
    p.add_argument('--n-labels', type=int, default=500)
    p.add_argument('--pools', type=int, nargs='+', default=[250, 1000, 4000], help="labels of the MLP teachers")
    p.add_argument('--mode', default='quick', choices=('quick', 'full'))
    p.add_argument('--out', type=Path, default=None, help='write the per-seed numbers here (JSON)')
    a = p.parse_args()
    t0, table = time.perf_counter(), {}
    zoo_teachers = (aft.WEAK_TEACHER, aft.TEACHER, aft.BROAD_TEACHER, aft.IMAGENET_TEACHER, 'noise')
    for s in range(a.seeds):
        runs = [(None, aft.experiment('mnist', seed=s, mode=a.mode, n_labels=a.n_labels, beta=aft.BETAS,
                                      teacher=(*zoo_teachers, 'pixels'), methods=('stl', 'aft', 'probe')))]
        runs += [(n, aft.experiment('mnist', seed=s, mode=a.mode, n_labels=a.n_labels, beta=aft.BETAS,
                                    teacher=('mlp', 'pixels'), teacher_pool=n, methods=('stl', 'aft', 'probe')))
                 for n in a.pools]
        for pool, res in runs:
            stl, px = rows(res, 'stl'), rows(res, 'aft', 'pixels')
            for t in sorted({r['teacher'] for r in res if r['method'] == 'aft'}):
                name = t if pool is None or t == 'pixels' else f'{t} ({pool} labels)'
                if t == 'pixels' and pool is not None: continue      # one pixels row per seed: the zoo run's
                ar, pr = rows(res, 'aft', t), rows(res, 'probe', t)
                e = table.setdefault(name, {'stl': [], 'px': [], 'probe': [], 'align': []})
                e['stl'].append(100 * (ar[s]['acc'] - stl[s]['acc']))
                e['px'].append(100 * (ar[s]['acc'] - px[s]['acc']))
                e['probe'].append(pr[s]['acc'])
                e['align'].append(ar[s]['alignment'])
        print(f"seed {s} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    print(f"\nMNIST, {a.n_labels} labels, {a.seeds} seeds, {a.mode} mode; gains in points, mean ± sd over seeds "
          f"(paired: same labelled rows, same STL)")
    print(f"{'teacher':42s} {'alignment':>9s} {'probe':>6s} {'AFT − STL':>14s} {'AFT − pixels':>14s} {'ahead':>6s}")
    for name, e in sorted(table.items(), key=lambda kv: np.mean(kv[1]['align'])):
        print(f"{name:42s} {np.mean(e['align']):9.3f} {np.mean(e['probe']):6.3f} {np.mean(e['stl']):+6.2f} ± "
              f"{sd(e['stl']):4.2f} {np.mean(e['px']):+6.2f} ± {sd(e['px']):4.2f} {sum(v > 0 for v in e['px']):>3d}/{len(e['px'])}")
    seconds = time.perf_counter() - t0
    print(f"({seconds:.0f} s)")
    if a.out is not None:
        from adaptbook.core import Results, provenance, run_digest
        out = [{'teacher': name, 'seed': s, 'alignment': e['align'][s], 'probe': e['probe'][s],
                'gain_stl_pt': e['stl'][s], 'gain_pixels_pt': e['px'][s]}
               for name, e in table.items() for s in range(a.seeds)]
        meta = {'what': 'AFT dose-response on MNIST (bench/aft_dose.py)', 'n_labels': a.n_labels, 'mode': a.mode,
                'pools': a.pools, 'seconds': round(seconds, 1), 'code': run_digest('aft'),
                'provenance': provenance(mode=a.mode, seed=0)}
        Results(out, meta).to_json(a.out)
        print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
