"""Regression guard: each chapter's quick-mode headline numbers against tests/expected/<chapter>.json, within the
tolerance stored there. A change that moves a headline number fails here; if the move is meant, rerun
`python tools/update_expected.py CHAPTER` and say why in the commit. The tolerances come from measurements stored in
the same json (the spread over seeds and the differences between torch builds; the rule is in
tools/update_expected.py). The chapters' `run()` results are cached on disk by the notebooks' run (core.cached), so
after `nbdev-test` this costs seconds. Marked `regression`: the README's test command runs it as its own step, after
the notebooks. The self-tests at the end (not marked) check the guard and the stored tolerances without running any
chapter."""
import importlib.util, json, math
from pathlib import Path
import pytest

EXPECTED = sorted((Path(__file__).parent / 'expected').glob('*.json'))

def _tool():
    "tools/update_expected.py as a module: the tolerance rule has one definition."
    path = Path(__file__).resolve().parent.parent / 'tools' / 'update_expected.py'
    spec = importlib.util.spec_from_file_location('update_expected', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def check(expected: dict, got: dict) -> list[str]:
    "The headline numbers of `got` that moved beyond `expected`'s tolerance, as messages."
    bad = []
    for k, want in expected['values'].items():
        tol, kind = expected['tolerance'][k], expected['tolerance_kind'][k]
        off = abs(got[k] - want) if kind == 'absolute' else abs(got[k] - want) / max(abs(want), 1e-12)
        if not off <= tol: bad.append(f"{expected['chapter']}.{k}: expected {want:.4g}, got {got[k]:.4g} "
                                      f"({kind} difference {off:.3g} > {tol})")
    return bad

@pytest.mark.regression
@pytest.mark.parametrize('path', EXPECTED, ids=[p.stem for p in EXPECTED])
def test_headline_numbers_did_not_move(path):
    from adaptbook import compare
    expected = json.loads(path.read_text())
    res = compare.load_all(mode='quick', names=[expected['chapter']])
    r = compare.summarize(res)[0]
    assert r['method'] == expected['method'] and r['at'] == expected['at'] and r['seeds'] == expected['seeds']
    bad = check(expected, r)
    if bad:
        p = res[expected['chapter']].meta.get('provenance', {})
        bad.append(f"(computed with torch {p.get('torch')}, {p.get('cpu')}, {p.get('threads')} thread(s); the "
                   f"tolerance was measured on: {', '.join(expected.get('measured', {}).get('builds', {}))})")
    assert not bad, '\n'.join(bad)

def test_the_guard_fails_on_a_number_changed_by_hand():
    e = {'chapter': 'x', 'values': {'acc': 0.90, 'examples_ratio': 0.1}, 'tolerance': {'acc': 0.005, 'examples_ratio': 0.02},
         'tolerance_kind': {'acc': 'absolute', 'examples_ratio': 'relative'}}
    assert check(e, {'acc': 0.903, 'examples_ratio': 0.1015}) == []
    assert len(check(e, {'acc': 0.91, 'examples_ratio': 0.1})) == 1
    assert len(check(e, {'acc': 0.90, 'examples_ratio': 0.11})) == 1
    assert len(check(e, {'acc': math.nan, 'examples_ratio': 0.1})) == 1

@pytest.mark.parametrize('path', EXPECTED, ids=[p.stem for p in EXPECTED])
def test_each_stored_guard_fails_just_beyond_its_tolerance(path):
    "Every guarded number of every chapter, moved by hand to just beyond its tolerance (up or down), fails alone."
    e = json.loads(path.read_text())
    for k, v in e['values'].items():
        step = e['tolerance'][k] * (1 if e['tolerance_kind'][k] == 'absolute' else max(abs(v), 1e-12))
        assert check(e, e['values']) == []
        for sign in (1, -1):
            assert check(e, e['values'] | {k: v + sign * 0.999 * step}) == [], (k, sign)
            moved = check(e, e['values'] | {k: v + sign * 1.01 * step})
            assert len(moved) == 1 and moved[0].startswith(f"{e['chapter']}.{k}:"), (k, sign, moved)

@pytest.mark.parametrize('path', EXPECTED, ids=[p.stem for p in EXPECTED])
def test_tolerances_are_the_rule_applied_to_the_stored_measurements(path):
    """The stored tolerance is what the rule gives from the stored measurements (no hand-edited tolerance), it is
    never below the floor nor below K standard errors over seeds, and every measured build's means pass the guard."""
    tool, e = _tool(), json.loads(path.read_text())
    m = e['measured']
    assert (m['K'], m['MARGIN'], m['rule']) == (tool.K, tool.MARGIN, tool.RULE)
    builds = list(m['builds'].values())
    here = m['builds'][m['reference']]
    assert here['mean'] == e['values'] and len(here['seeds']) == e['seeds']
    assert e == tool.headline(e['chapter'], builds, here=here)       # recomputed from the measurements alone
    for b in builds:
        assert len(b['seeds']) == e['seeds'] and b['method'] == e['method'] and b['at'] == e['at']
        for k, v in b['per_seed'].items():
            assert math.isclose(sum(v) / len(v), b['mean'][k], rel_tol=1e-9, abs_tol=1e-12)
        assert check(e, b['mean']) == [], tool.build_id(b['build'])
    for k, tol in e['tolerance'].items():
        assert tol >= tool.FLOOR[k] and tol >= max(m['terms'][k]['terms'].values()) - 1e-12

def test_the_readme_table_is_the_stored_expectations():
    "The README's guard table is printed from the jsons (`update_expected.py --readme`): it cannot drift from them."
    readme = (Path(__file__).resolve().parent.parent / 'README.md').read_text()
    missing = [row for row in _tool().readme_rows() if row not in readme]
    assert not missing, ("README.md's regression-guard table differs from tests/expected; paste the output of "
                         "`python tools/update_expected.py --readme`:\n" + '\n'.join(missing))
