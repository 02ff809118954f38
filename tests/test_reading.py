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


@pytest.mark.parametrize('name', CHAPTERS + ['05_intro', '90_compare'])
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
