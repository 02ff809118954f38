"""The reading path of each method chapter (issue #21): what a student sees before the appendix is mostly
demonstration, not exported library code, and no code cell is a wall. Measured on the committed notebooks."""
import json
import re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / 'nbs'
CHAPTERS = ['10_kprior', '20_zapping', '30_piggyback', '40_aft', '50_kvb']
APPENDIX = re.compile(r'^##\s+(\d+\s+)?(References|Implementation notes)', re.M)
MAX_LINES, MAX_EXPORTED = 30, 0.5


def reading_path(name: str, nbs: Path = NBS) -> list[dict]:
    """The code cells a reader sees before the appendix (References, Implementation notes): not hidden
    (`#| hide`, `echo: false`, `include: false`) and not folded (`code-fold`). Each: index, lines, exported."""
    cells, out = json.loads((nbs / f'{name}.ipynb').read_text())['cells'], []
    for i, c in enumerate(cells):
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            if APPENDIX.search(src): break
            continue
        if c['cell_type'] != 'code': continue
        lines = src.splitlines()
        dirs = ' '.join(line for line in lines if line.startswith('#|'))
        if re.search(r'#\|\s*(hide\b|echo:\s*false|include:\s*false)', dirs) or 'code-fold' in dirs: continue
        body = [line for line in lines if line.strip() and not line.startswith('#|')]
        out.append(dict(index=i, lines=len(body), exported=bool(re.search(r'#\|\s*export', dirs))))
    return out


@pytest.mark.parametrize('name', CHAPTERS)
def test_exported_share(name):
    cells = reading_path(name)
    shown = sum(c['lines'] for c in cells)
    exported = sum(c['lines'] for c in cells if c['exported'])
    assert shown > 0, f'{name}: no visible code in the reading path'
    assert exported / shown <= MAX_EXPORTED, (
        f'{name}: exported code is {exported}/{shown} = {exported / shown:.0%} of the code shown before the appendix '
        f'(at most {MAX_EXPORTED:.0%}): fold the hardened version (#| code-fold: true) after a short one')


@pytest.mark.parametrize('name', CHAPTERS)
def test_no_long_cell(name):
    long = [(c['index'], c['lines']) for c in reading_path(name) if c['lines'] > MAX_LINES]
    assert not long, f'{name}: visible code cells over {MAX_LINES} lines (cell index, lines): {long}'


def test_reading_path_sees_folds(tmp_path):
    "The measure itself: a folded or hidden cell is not shown, a cell after References is appendix."
    cell = lambda kind, src: dict(cell_type=kind, source=src, metadata={}, **({'outputs': []} if kind == 'code' else {}))
    nb = dict(cells=[cell('code', '#| export\na = 1\nb = 2\n'), cell('code', '#| export\n#| code-fold: true\nc = 3\n'),
                     cell('code', '#| hide\nd = 4\n'), cell('code', 'e = 5\n'), cell('markdown', '## 9 References\n'),
                     cell('code', '#| export\nf = 6\n')], metadata={}, nbformat=4, nbformat_minor=5)
    (tmp_path / 'x.ipynb').write_text(json.dumps(nb))
    assert reading_path('x', tmp_path) == [dict(index=0, lines=2, exported=True), dict(index=3, lines=1, exported=False)]


@pytest.mark.parametrize('name', CHAPTERS + ['05_intro'])
def test_no_typed_results(name):
    "Prose quotes results only through code: no accuracy, gap, ratio or error typed into a markdown cell."
    from conftest import typed_result
    hit = typed_result(name)
    assert hit is None, f'{name}: a result typed by hand into markdown: {hit}'


@pytest.mark.parametrize('name', CHAPTERS + ['05_intro', '90_compare'] + [f'{int(c[:2]) + 1:02d}_{c[3:]}_harness' for c in CHAPTERS])
def test_the_subtitle_is_whole_and_no_test_import_is_on_the_page(name):
    "The site shows the title cell's `> ` line as the page's subtitle: one line, a whole sentence (issue #34)."
    cells = json.loads((NBS / f'{name}.ipynb').read_text())['cells']
    title = next(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith('# '))
    desc = title.split('\n\n')[1]
    assert desc.startswith('> ') and '\n' not in desc.strip() and desc.rstrip().endswith('.'), desc[:120]
    for c in cells:                                    # the tests' imports are plumbing: hidden from the page
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and 'from fastcore.test import' in src and 'export' not in src:
            assert src.startswith('#| hide'), src[:80]


# --- #34: the method and its harness in separate rooms ---------------------------------------------------------------
STEMS = [c.split('_', 1)[1] for c in CHAPTERS]
MAX_HARNESS = 0.35
PKG = NBS.parent / 'adaptbook'


def defined_names(path: Path) -> set[str]:
    "Top-level names a module defines (functions, classes, assignments), not the ones it imports."
    import ast
    out = set()
    for n in ast.parse(path.read_text()).body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                out |= {x.id for x in ast.walk(t) if isinstance(x, ast.Name)}
    return out - {'__all__', '_', '_all_'}


def harness_share(nb: dict, harness: set[str], harness_module: str) -> tuple[int, int]:
    """(harness lines, code lines) of a notebook as Jupyter shows it (every code cell, folded or not; blank lines and
    `#|` directives not counted). A line is harness if its cell exports to `harness_module`, or if it lies in a
    top-level definition of a name the harness module defines (plumbing re-typed on the page)."""
    import ast
    total = harness_lines = 0
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        lines = ''.join(c['source']).split('\n')
        body = [i for i, line in enumerate(lines) if line.strip() and not line.startswith('#|')]
        total += len(body)
        m = next((re.match(r'#\|\s*export\s*(\S*)', line) for line in lines if re.match(r'#\|\s*export\b', line)), None)
        if m and m.group(1) == harness_module:
            harness_lines += len(body)
            continue
        code = '\n'.join('' if (line.startswith('#|') or line.lstrip().startswith(('%', '!'))) else line for line in lines)
        try: tree = ast.parse(code)
        except SyntaxError: continue
        spans = set()
        for n in tree.body:
            names = ({n.name} if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else
                     {x.id for t in getattr(n, 'targets', []) for x in ast.walk(t) if isinstance(x, ast.Name)})
            if names & harness: spans |= set(range(n.lineno - 1, n.end_lineno))
        harness_lines += len(spans & set(body))
    return harness_lines, total


@pytest.mark.parametrize('name,stem', list(zip(CHAPTERS, STEMS)))
def test_the_chapter_is_mostly_method(name, stem):
    "Issue #34: of the code a student sees in Jupyter (nothing folded), at most 35 % is the experiment's harness."
    nb = json.loads((NBS / f'{name}.ipynb').read_text())
    h, total = harness_share(nb, defined_names(PKG / f'{stem}.py'), stem)
    assert total > 0 and h / total <= MAX_HARNESS, f'{name}: {h} of {total} code lines are harness ({h / total:.0%})'
    default = next(''.join(c['source']).split()[-1] for c in nb['cells'] if ''.join(c['source']).startswith('#| default_exp'))
    assert default == f'{stem}_method', f'{name} exports to {default}; the chapter is the method: {stem}_method'


def test_harness_share_counts_plumbing():
    "The measure itself: harness exported from the page, or a harness name re-defined there, counts; a call does not."
    cell = lambda src: dict(cell_type='code', source=src, metadata={}, outputs=[])
    nb = dict(cells=[cell('#| export\ndef loss(x):\n    return x\n'), cell('#| export kp\ndef experiment():\n    pass\n'),
                     cell('def run():\n    return 1\nres = run()\n'), cell('experiment()\n')])
    assert harness_share(nb, {'experiment', 'run'}, 'kp') == (2 + 2, 2 + 2 + 3 + 1)


@pytest.mark.parametrize('stem', STEMS)
def test_method_and_harness_are_separate_modules(stem):
    """`adaptbook/<m>_method.py` is the method (its building blocks) and imports nothing of the harness;
    `adaptbook/<m>.py` is the harness (experiment, run, figure, widget) and re-exports the whole method, so
    `from adaptbook import <m>` is unchanged for its users."""
    import ast
    import importlib
    src = (PKG / f'{stem}_method.py').read_text()
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, ast.ImportFrom):
            assert n.module not in (stem, f'adaptbook.{stem}'), f'{stem}_method imports its harness'
            assert not (n.level == 1 and n.module is None and any(a.name == stem for a in n.names))
    method_defs, harness_defs = defined_names(PKG / f'{stem}_method.py'), defined_names(PKG / f'{stem}.py')
    api = {'experiment', 'run', 'figure', 'widget', 'COMPARE'}
    assert not method_defs & api, f'{stem}_method defines harness entry points {method_defs & api}'
    assert api <= harness_defs, f'{stem}.py lacks {api - harness_defs}'
    assert not method_defs & harness_defs, f'defined in both rooms: {sorted(method_defs & harness_defs)}'
    method, public = importlib.import_module(f'adaptbook.{stem}_method'), importlib.import_module(f'adaptbook.{stem}')
    missing = [x for x in method.__all__ if getattr(public, x, None) is not getattr(method, x)]
    assert not missing, f'adaptbook.{stem} does not re-export {missing}'
    assert set(method.__all__) <= set(public.__all__), sorted(set(method.__all__) - set(public.__all__))


@pytest.mark.parametrize('name,stem', list(zip(CHAPTERS, STEMS)))
def test_the_chapter_links_its_harness_and_the_sidebar_lists_it(name, stem):
    harness = f'{int(name[:2]) + 1:02d}_{stem}_harness.ipynb'
    assert (NBS / harness).exists()
    md = '\n'.join(''.join(c['source']) for c in json.loads((NBS / f'{name}.ipynb').read_text())['cells']
                   if c['cell_type'] == 'markdown')
    assert f']({harness})' in md, f'{name} does not link {harness}'
    assert harness in (NBS / 'sidebar.yml').read_text()
