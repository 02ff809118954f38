"""Regression guard: each chapter's quick-mode headline numbers against tests/expected/<chapter>.json, within the
tolerance stored there. A change that moves a headline number fails here; if the move is meant, rerun
`python tools/update_expected.py CHAPTER` and say why in the commit. The chapters' `run()` results are cached on disk
by the notebooks' run (core.cached), so after `nbdev-test` this costs seconds. Marked `regression`: the README's test
command runs it as its own step, after the notebooks."""
import json, math
from pathlib import Path
import pytest
from adaptbook import compare

EXPECTED = sorted((Path(__file__).parent / 'expected').glob('*.json'))
pytestmark = pytest.mark.regression

def check(expected: dict, got: dict) -> list[str]:
    "The headline numbers of `got` that moved beyond `expected`'s tolerance, as messages."
    bad = []
    for k, want in expected['values'].items():
        tol, kind = expected['tolerance'][k], expected['tolerance_kind'][k]
        off = abs(got[k] - want) if kind == 'absolute' else abs(got[k] - want) / max(abs(want), 1e-12)
        if not off <= tol: bad.append(f"{expected['chapter']}.{k}: expected {want:.4g}, got {got[k]:.4g} "
                                      f"({kind} difference {off:.3g} > {tol})")
    return bad

@pytest.mark.parametrize('path', EXPECTED, ids=[p.stem for p in EXPECTED])
def test_headline_numbers_did_not_move(path):
    expected = json.loads(path.read_text())
    res = compare.load_all(mode='quick', names=[expected['chapter']])
    r = compare.summarize(res)[0]
    assert r['method'] == expected['method'] and r['at'] == expected['at'] and r['seeds'] == expected['seeds']
    bad = check(expected, r)
    assert not bad, '\n'.join(bad)

def test_the_guard_fails_on_a_number_changed_by_hand():
    e = {'chapter': 'x', 'values': {'acc': 0.90, 'examples_ratio': 0.1}, 'tolerance': {'acc': 0.005, 'examples_ratio': 0.02},
         'tolerance_kind': {'acc': 'absolute', 'examples_ratio': 'relative'}}
    assert check(e, {'acc': 0.903, 'examples_ratio': 0.1015}) == []
    assert len(check(e, {'acc': 0.91, 'examples_ratio': 0.1})) == 1
    assert len(check(e, {'acc': 0.90, 'examples_ratio': 0.11})) == 1
    assert len(check(e, {'acc': math.nan, 'examples_ratio': 0.1})) == 1
