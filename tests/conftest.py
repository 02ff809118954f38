import os
import pytest

def _shared_data():
    "The shared data folder: $ADAPTBOOK_DATA, else ../shared/data beside the checkout."
    p = os.environ.get('ADAPTBOOK_DATA') or os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
    return os.path.abspath(p)

NEEDS_ORIGINALS = ("needs the original dataset files, which the repository does not carry (its data pack holds MNIST, "
                   "USPS, a7a and Omniglot, and Fashion-MNIST's test split; these tests read the original files). "
                   "To run them: "
                   "`adaptbook fetch all` where there is a network, then ADAPTBOOK_DATA=~/.cache/adaptbook make test "
                   "(or point ADAPTBOOK_DATA at any folder holding mnist/, fashion-mnist/, usps/, a7a/ and omniglot/)")

@pytest.fixture(scope='session')
def shared_data():
    """The folder of original dataset files ($ADAPTBOOK_DATA, else ../shared/data beside the checkout). Without it a
    test skips, saying how to get the files; in CI (CI=true) a missing folder fails."""
    p = _shared_data()
    if not os.path.isdir(p):
        if os.environ.get('CI'): pytest.fail(f'CI=true but the data folder {p} is missing')
        pytest.skip(NEEDS_ORIGINALS)
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
    "No data pack, no $ADAPTBOOK_DATA files, an empty cache (the data and fetch tests)."
    from adaptbook import data
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'data'))
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    monkeypatch.setattr(data, 'PACK', tmp_path / 'no-pack')
    return tmp_path


def no_training():
    """A context in which any optimizer step (every training loop records its steps in `core.Ledger.step`) fails the
    test: what it guards must be refused before training starts. It replaces timing asserts, which break under load."""
    import contextlib
    from adaptbook import core

    @contextlib.contextmanager
    def ctx():
        real = core.Ledger.step
        def step(self, n=1):
            raise AssertionError('an optimizer step ran before the error was raised: the check must come first')
        core.Ledger.step = step
        try: yield
        finally: core.Ledger.step = real
    return ctx()
