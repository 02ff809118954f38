import os
import pytest

def _shared_data():
    "The shared data folder: $ADAPTBOOK_DATA, else ../shared/data beside the checkout."
    p = os.environ.get('ADAPTBOOK_DATA') or os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
    return os.path.abspath(p)

@pytest.fixture(scope='session')
def shared_data():
    "The real-data folder. Outside CI a machine without it skips; in CI (CI=true) a missing folder fails."
    p = _shared_data()
    if not os.path.isdir(p):
        if os.environ.get('CI'): pytest.fail(f'CI=true but the shared data folder {p} is missing')
        pytest.skip(f'no shared data at {p} (set ADAPTBOOK_DATA)')
    return p


def typed_result(notebook: str) -> str | None:
    """The first result typed by hand into a markdown cell of `nbs/<notebook>.ipynb` (an accuracy like "81.9 %", a gap
    like "0.5 pt", a ratio like "7×", an error like "1e-16"), with the cell's start; None if there is none. Maths,
    code and links are left out; settings such as "10 % memory" are not results."""
    import json, re
    nb = json.load(open(os.path.join(os.path.dirname(__file__), '..', 'nbs', f'{notebook}.ipynb')))
    bad = re.compile(r'\d+\.\d+ ?%|\d+(\.\d+)? ?pt\b|(?<![×\w.])\d+(\.\d+)? ?×(?!\s?\w)|\de-\d+')   # N×5×3: a shape
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        text = re.sub(r'\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\(https?://[^)]*\)|\[arXiv:[^]]*\]', '', ''.join(c['source']), flags=re.S)
        hit = bad.search(text)
        if hit: return f"{hit.group(0)!r} in: {text[:120]!r}"
    return None


@pytest.fixture
def empty_machine(tmp_path, monkeypatch):
    "No $ADAPTBOOK_DATA files, an empty cache (the data and fetch tests)."
    from adaptbook import data
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'data'))
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    return tmp_path
