"""Piggyback's clothes target at every label budget: the chapter's headline and its label-budget sweep.

A ConvNet pre-trained on digits and characters (`piggyback.DIGITS_ZOO`, shipped; it never saw a piece of clothing)
stays frozen and learns Fashion-MNIST 0-4 then 5-9 (`piggyback.CLOTHES`: the pack's test split, per class its first
600 images the training pool, the other 400 the test images) with Piggyback, the head alone, a fine-tuned copy per
task (the paper's reference, "individual networks") and training from scratch, at 100, 300, 1,000 and 3,000 (the
whole pool) labels per task, three seeds each, every budget with as many training examples processed
(`piggyback.budget_epochs`). The first seed of each budget chooses every learning rate on its validation split.
Prints, per budget, each method's mean accuracy and Piggyback's paired differences seed by seed. Asserts nothing.

`--out FILE` writes every row as `Results` JSON with the provenance (adaptbook's commit, torch, CPU, threads), the
Piggyback code's digest (`core.run_digest('piggyback')`) and the backbone weights' sha256 (`piggyback.digits_sha256`):
the chapter reads `adaptbook/measured/piggyback_clothes.json` written this way (`piggyback.measured_clothes`), because
the sweep takes minutes, beyond its quick-mode budget.
`--budgets` measures part of it (0: the whole pool), so two processes can share the work; `--join A B --out C`
merges their files.

usage: python bench/piggyback_clothes.py [--budgets 100 300 1000 0] [--mode quick] [--out FILE] [--join FILE ...]"""
import argparse, time
from pathlib import Path

import numpy as np

from adaptbook import piggyback as pg
from adaptbook.core import Results, provenance, run_digest


def report(res: Results) -> None:
    "Per budget: each method's mean accuracy (%) and Piggyback minus each method, per seed and on average (points)."
    for n in sorted({r['n_labels'] for r in res}):
        part = res.where(n_labels=n)
        acc = {m: {r['seed']: 100 * r['acc'] for r in part.where(method=m)} for m in pg.CLOTHES_METHODS}
        print(f"{n} labels per task: " + ', '.join(f"{m} {np.mean(list(v.values())):.1f} %" for m, v in acc.items()))
        for m in pg.CLOTHES_METHODS[1:]:
            d = [acc['piggyback'][s] - acc[m][s] for s in sorted(acc['piggyback'])]
            print(f"  Piggyback − {m}: {np.mean(d):+.1f} points (per seed: {', '.join(f'{v:+.1f}' for v in d)})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--budgets', type=int, nargs='+', default=[100, 300, 1000, 0], help='labels per task; 0: the pool')
    p.add_argument('--mode', default='quick', choices=('quick', 'full'))
    p.add_argument('--out', type=Path, default=None, help='write the rows here (Results JSON)')
    p.add_argument('--join', type=Path, nargs='+', default=None, help='merge these files (written by --out) instead')
    a = p.parse_args()
    if a.join:
        parts = [Results.from_json(f) for f in a.join]
        res = Results.merge(*parts, seconds=sum(q.meta['seconds'] for q in parts),
                            code=parts[0].meta['code'], provenance=parts[0].meta['provenance'],
                            n_labels=[n for q in parts for n in q.meta['n_labels']],
                            epochs=[e for q in parts for e in q.meta['epochs']], seeds=parts[0].meta['seeds'])
        if len({q.meta['code'] for q in parts}) > 1: raise SystemExit("--join: the files were measured by other code")
        if len({q.meta.get('backbone_sha256') for q in parts}) > 1:
            raise SystemExit("--join: the files were measured on other weights of the backbone")
    else:
        t0 = time.perf_counter()
        res = pg.clothes_sweep([b or None for b in a.budgets], mode=a.mode)
        res.meta.update(seconds=time.perf_counter() - t0, code=run_digest('piggyback'),
                        backbone_sha256=pg.digits_sha256(a.mode), provenance=provenance(mode=a.mode, seed=0))
    report(res)
    print(f"measured in {res.meta['seconds']:.0f} s of compute")
    if a.out: res.to_json(a.out); print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
