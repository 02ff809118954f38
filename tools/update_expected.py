"""Write tests/expected/<chapter>.json: each chapter's quick-mode headline numbers (from `compare.summarize` of its
cached `run()`), with the tolerance the regression test allows. Run after a change that is *meant* to move a number,
and say so in the commit: `python tools/update_expected.py [chapter ...]`."""
import json, sys
from pathlib import Path
from adaptbook import compare

# How far a number may move before the regression test fails: accuracy in [0, 1], ratios relative.
TOLERANCE = {'acc': 0.005, 'retrain_acc': 0.005, 'examples_ratio': 0.02}

def headline(name: str) -> dict:
    res = compare.load_all(mode='quick', names=[name])
    r = compare.summarize(res)[0]
    # an accuracy may move by its standard error over the seeds (another torch build is another draw of the same
    # noise), and never by less than TOLERANCE
    tol = TOLERANCE | {k: round(max(TOLERANCE[k], r[f'{k}_sd'] / r['seeds'] ** 0.5), 4) for k in ('acc', 'retrain_acc')}
    return {'chapter': name, 'method': r['method'], 'at': r['at'], 'seeds': r['seeds'],
            'values': {k: r[k] for k in TOLERANCE}, 'tolerance': tol,
            'tolerance_kind': {'acc': 'absolute', 'retrain_acc': 'absolute', 'examples_ratio': 'relative'}}

if __name__ == '__main__':
    names = sys.argv[1:] or list(compare.HEADLINES)
    out = Path(__file__).resolve().parent.parent / 'tests' / 'expected'
    out.mkdir(exist_ok=True)
    for n in names:
        (out / f'{n}.json').write_text(json.dumps(headline(n), indent=1) + '\n')
        print('wrote', out / f'{n}.json')
