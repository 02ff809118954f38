"""Write tests/expected/<chapter>.json: each chapter's quick-mode headline numbers (from its cached `run()`, as
`compare.summarize` computes them), the tolerance the regression test allows each one, and the measurements that
tolerance comes from. Run it after a change that is *meant* to move a number, and say so in the commit.

    python tools/update_expected.py --measure FILE [chapter ...]
        This interpreter's torch build: each chapter's headline per seed, their mean and sd, and the build
        (torch version, CPU kernels, threads, device), written to FILE. Run it under every torch build you want the
        guard to accept, each with its own empty cache: `ADAPTBOOK_CACHE=$(mktemp -d) ADAPTBOOK_MODE=quick
        OMP_NUM_THREADS=1 python tools/update_expected.py --measure torch291.json` (the results cache is keyed by
        the code, not by the torch build, so a shared cache would hand one build's numbers to the other).
    python tools/update_expected.py [chapter ...] [--builds FILE ...]
        The expected values from this build (the reference build: the one CI pins), with the other builds'
        measurements from the FILEs; this build's own numbers are read from a FILE that holds them for the same code
        (`run_digest`), else from its cached run(). Without FILEs, the other builds stored in the current json are
        kept (their numbers are then from the code they were measured on: a note says so, and the json keeps each
        build's `run_digest`); `--drop-stale` drops those instead, after a change meant to move the numbers.

Each guarded number x (accuracies `acc`, `retrain_acc` as absolute differences; `examples_ratio` relative to its
value) gets

    tolerance = max(FLOOR[x], K * sd / sqrt(seeds), MARGIN * cross_build)

- `sd`: the sample sd of x over the seeds, pooled over the builds measured (root mean of the per-build variances);
  `sd / sqrt(seeds)` is the standard error of the mean the test compares.
- K = 4. Another torch build runs other kernels (BLAS, oneDNN, vectorised reductions) whose last-bit differences grow
  through training: at worst each seed becomes another draw of the training noise. The difference of two means of
  `seeds` independent draws has sd `sd * sqrt(2 / seeds)`, so K = 4 puts the bound at 2.8 of those sds (a false
  alarm about 1 in 200 were sd known; with sd estimated from 3 seeds per build, pooled, it is about 1 in 20, which
  the MARGIN term below covers for the builds actually measured). A near-chance headline, whose spread over seeds is
  large, gets a wide tolerance from this term, not the floor.
- `cross_build`: the largest difference between this build's mean and another measured build's mean. MARGIN = 2:
  one measured difference is one draw of it; an unmeasured build may differ by more than those measured, and twice the
  largest measured difference passes every build measured with room.
- FLOOR: 0.005 (half a point) for accuracies, 2 % for the cost ratio: below this a move is not worth a failure.

Measured so far (the README's "Determinism and the regression guard"): torch 2.9.1, 2.13.0+cpu and 2.14.1 on one AVX2
CPU agree bit for bit; other CPU kernels or two threads moved a mean accuracy by at most 0.17 pt (one seed by 0.45
pt), less than a tenth of the K term, which therefore sets every tolerance; a GPU was not measured.

Tolerances are rounded *up* to 4 decimals. The json keeps `values`, `tolerance` and `tolerance_kind` (what the test
reads) and `measured`: per build its means, per-seed values and sds, and per number the three terms of the rule."""
import argparse, json, math, sys
from pathlib import Path
import numpy as np
from adaptbook import compare, core

FLOOR = {'acc': 0.005, 'retrain_acc': 0.005, 'examples_ratio': 0.02}
KIND = {'acc': 'absolute', 'retrain_acc': 'absolute', 'examples_ratio': 'relative'}
K, MARGIN = 4.0, 2.0
RULE = 'tolerance = max(floor, K * sd / sqrt(seeds), MARGIN * cross_build), rounded up to 4 decimals; relative kinds ' \
       'divide sd and cross_build by |value|'
EXPECTED = Path(__file__).resolve().parent.parent / 'tests' / 'expected'

def build_id(b: dict) -> str:
    "A build in words: 'torch 2.14.1+cu130, cpu (x86_64) AVX2, 1 thread(s)'."
    return f"torch {b['torch']}, {b['device']} {b['cpu']}, {b['threads']} thread(s)"

def this_build() -> dict:
    "This interpreter's torch build, as the cached results' provenance records it."
    p = core.provenance()
    return {'torch': p['torch'], 'device': p['device'], 'cpu': p['cpu'], 'threads': core.default_threads(),
            'python': p['python']}

def measure(name: str) -> dict:
    "Chapter `name`'s headline under this build: per seed, mean and sd of each guarded number (cached quick run())."
    res = compare.load_all(mode='quick', names=[name])
    r = compare.summarize(res)[0]
    pairs = compare.headline_pairs(name, res[name])
    per_seed = {'acc': [a['acc'] for a, _ in pairs], 'retrain_acc': [ref['acc'] for _, ref in pairs],
                'examples_ratio': [a['examples'] / ref['examples'] for a, ref in pairs]}
    mean = {k: r[k] for k in FLOOR}            # summarize's own numbers: what the regression test reads
    assert all(math.isclose(mean[k], float(np.mean(v)), rel_tol=1e-9, abs_tol=1e-12) for k, v in per_seed.items())
    prov = res[name].meta.get('provenance', {})
    return {'method': r['method'], 'at': r['at'], 'seeds': [a['seed'] for a, _ in pairs], 'mean': mean,
            'sd': {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in per_seed.items()},
            'per_seed': per_seed, 'run_digest': prov.get('run_digest'), 'build': this_build()}

def tolerance(key: str, value: float, sds: list[float], seeds: int, others: list[float]) -> dict:
    "The rule's three terms for one number and the tolerance they give (see the module's docstring)."
    scale = max(abs(value), 1e-12) if KIND[key] == 'relative' else 1.0
    sd = math.sqrt(float(np.mean(np.square(sds)))) if sds else 0.0
    cross = max((abs(v - value) for v in others), default=0.0)
    terms = {'floor': FLOOR[key], 'seeds': K * sd / math.sqrt(seeds) / scale, 'builds': MARGIN * cross / scale}
    return {'tolerance': math.ceil(max(terms.values()) * 1e4 - 1e-9) / 1e4, 'sd_pooled': sd, 'cross_build': cross,
            'terms': terms}

def headline(name: str, builds: list[dict], here: dict | None = None) -> dict:
    """The expected json of chapter `name`: this build's values (`here`, else measured now) and tolerances from the
    spread over seeds and the other builds' measurements in `builds` (records of `measure`)."""
    here = here or measure(name)
    others = [b for b in builds if build_id(b['build']) != build_id(here['build'])]
    for b in others:
        if (b['method'], b['at'], len(b['seeds'])) != (here['method'], here['at'], len(here['seeds'])):
            raise ValueError(f"{name}: the measurement on {build_id(b['build'])} is of {b['method']} at {b['at']} "
                             f"over {len(b['seeds'])} seeds, not {here['method']} at {here['at']} over "
                             f"{len(here['seeds'])}: measure it again with this code")
    n, terms, tol = len(here['seeds']), {}, {}
    for k in FLOOR:
        t = tolerance(k, here['mean'][k], [b['sd'][k] for b in [here, *others]], n, [b['mean'][k] for b in others])
        tol[k], terms[k] = t.pop('tolerance'), t
    return {'chapter': name, 'method': here['method'], 'at': here['at'], 'seeds': n,
            'values': dict(here['mean']), 'tolerance': tol, 'tolerance_kind': dict(KIND),
            'measured': {'rule': RULE, 'K': K, 'MARGIN': MARGIN, 'reference': build_id(here['build']),
                         'terms': terms, 'builds': {build_id(b['build']): b for b in [here, *others]}}}

def _stored_builds(name: str) -> list[dict]:
    "The builds' measurements stored in chapter `name`'s current expected json (none if it has no such block)."
    p = EXPECTED / f'{name}.json'
    return list(json.loads(p.read_text()).get('measured', {}).get('builds', {}).values()) if p.exists() else []

README_NAMES = {'kprior': 'K-priors', 'zapping': 'zapping (50 classes: chance 2 %)', 'piggyback': 'Piggyback',
                'aft': 'AFT', 'kvb': 'KVB'}

def readme_rows(names=None) -> list[str]:
    """The rows of the README's regression-guard table, from the expected jsons (so the README cannot drift from them):
    `python tools/update_expected.py --readme` prints them."""
    rows = []
    for n in names or list(README_NAMES):
        e = json.loads((EXPECTED / f'{n}.json').read_text())
        terms = e['measured']['terms']
        cell = lambda k: (f"{e['values'][k]:.4f} ± {e['tolerance'][k]:.4f} (sd {terms[k]['sd_pooled']:.4f})"
                          if e['tolerance_kind'][k] == 'absolute' else
                          f"{e['values'][k]:.3g} ± {100 * e['tolerance'][k]:.1f}% (sd {100 * terms[k]['sd_pooled'] / abs(e['values'][k]):.1f}%)")
        rows.append(f"| {README_NAMES.get(n, n)} | {cell('acc')} | {cell('retrain_acc')} | {cell('examples_ratio')} |")
    return rows

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('chapters', nargs='*', help=f"default: all ({', '.join(compare.HEADLINES)})")
    ap.add_argument('--measure', metavar='FILE', help="write this build's measurements to FILE, not the expected jsons")
    ap.add_argument('--builds', nargs='+', default=[], metavar='FILE', help='measurements of other builds (--measure)')
    ap.add_argument('--readme', action='store_true', help="print the README's table rows from the expected jsons")
    ap.add_argument('--drop-stale', action='store_true',
                    help="drop the stored builds measured on other code (after a change meant to move the numbers: "
                         "their old numbers would otherwise widen the tolerance); measure them again with --measure")
    a = ap.parse_args(argv)
    if a.readme:
        print('\n'.join(readme_rows(a.chapters or None)))
        return
    names = a.chapters or list(compare.HEADLINES)
    unknown = [n for n in names if n not in compare.HEADLINES]
    if unknown: ap.error(f"unknown chapter(s) {unknown}; known: {', '.join(compare.HEADLINES)}")
    if a.measure:
        out = Path(a.measure)
        got = json.loads(out.read_text()) if out.exists() else {}
        for n in names:
            got[n] = measure(n)
            out.write_text(json.dumps(got, indent=1) + '\n')       # after each chapter: a long run keeps what it did
            print(f"{n}: {build_id(got[n]['build'])}:", {k: round(v, 4) for k, v in got[n]['mean'].items()})
        return
    files = [json.loads(Path(f).read_text()) for f in a.builds]
    EXPECTED.mkdir(exist_ok=True)
    for n in names:
        builds = [f[n] for f in files if n in f] if files else _stored_builds(n)
        if a.drop_stale:
            for b in [b for b in builds if b['run_digest'] != core.run_digest(n)]:
                print(f"note: {n}: dropped {build_id(b['build'])}, measured on other code (run_digest {b['run_digest']})")
                builds.remove(b)
        # this build's own measurement of this very code, if a FILE has it; else this build's cached run()
        here = next((b for b in builds if build_id(b['build']) == build_id(this_build())
                     and b['run_digest'] == core.run_digest(n)), None) if files else None
        e = headline(n, builds, here=here)
        for b in e['measured']['builds'].values():
            if b['run_digest'] != e['measured']['builds'][e['measured']['reference']]['run_digest']:
                print(f"note: {n}: {build_id(b['build'])} was measured on other code (run_digest {b['run_digest']})")
        (EXPECTED / f'{n}.json').write_text(json.dumps(e, indent=1) + '\n')
        print('wrote', EXPECTED / f'{n}.json', e['tolerance'])

if __name__ == '__main__':
    sys.exit(main())
