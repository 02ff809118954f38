"""Real browser: JupyterLab on 127.0.0.1 in Debian's Chromium, driven by playwright. Opens a notebook, runs all cells,
moves sliders and checks that the figures change. Two notebooks: the widgets chapter, and one that calls every method
chapter's `widget()`. Skips only where Chromium is absent (never in CI)."""
import json, os, re, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
if not os.path.exists(CHROMIUM):
    if os.environ.get('CI'): raise RuntimeError('CI=true but Debian chromium is not installed; .ci/run installs it')
    pytest.skip('Debian chromium not installed (apt-get install chromium)', allow_module_level=True)

NB = Path(__file__).parent.parent / 'nbs' / '02_widgets.ipynb'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']

# every method chapter's widget, as a reader would call it: (module, the call)
CHAPTER_WIDGETS = {
    'kprior': 'kprior.widget()',
    'piggyback': 'piggyback.widget()',
    'kvb': 'kvb.widget()',
    'aft': "aft.widget('digits')",
    'zapping': 'zapping.widget()',
}

def _chapters_notebook(path):
    "A notebook with one cell per chapter widget (its first control is the main slider)."
    cells = [{'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'id': f'c{i}',
              'source': f'from adaptbook import {m}\nw_{m} = {call}'} for i, (m, call) in enumerate(CHAPTER_WIDGETS.items())]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))

def _failing_notebook(path):
    "A notebook whose second cell raises: Run All stops there, and the third cell (a slider) never runs."
    src = ['x = 1', "raise ValueError('this cell fails on purpose')", 'import ipywidgets as W\nW.IntSlider()']
    cells = [{'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'id': f'f{i}', 'source': t}
             for i, t in enumerate(src)]
    path.write_text(json.dumps({'cells': cells, 'nbformat': 4, 'nbformat_minor': 5, 'metadata': {
        'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}}}))

@pytest.fixture
def lab(tmp_path):
    (tmp_path / 'nb').mkdir()
    shutil.copy(NB, tmp_path / 'nb' / 'widgets.ipynb')
    _chapters_notebook(tmp_path / 'nb' / 'chapters.ipynb')
    _failing_notebook(tmp_path / 'nb' / 'failing.ipynb')
    env = dict(os.environ, **{k: str(tmp_path / v) for k, v in dict(
        JUPYTER_CONFIG_DIR='cfg', JUPYTER_RUNTIME_DIR='rt', JUPYTERLAB_SETTINGS_DIR='settings',
        JUPYTERLAB_WORKSPACES_DIR='ws', IPYTHONDIR='ipy').items()}, MPLBACKEND='Agg')  # the figure must not need inline
    sd = tmp_path / 'settings' / '@jupyterlab' / 'apputils-extension'; sd.mkdir(parents=True)
    (sd / 'notification.jupyterlab-settings').write_text('{"fetchNews": "false", "checkForUpdates": false}')
    nd = tmp_path / 'settings' / '@jupyterlab' / 'notebook-extension'; nd.mkdir(parents=True)
    # render every cell: with JupyterLab's default windowing, cells outside the viewport are not in the page
    (nd / 'tracker.jupyterlab-settings').write_text('{"windowingMode": "none"}')
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    token = secrets.token_hex(16)
    log = open(tmp_path / 'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ip=127.0.0.1',
                             f'--port={port}', f'--IdentityProvider.token={token}',
                             f"--ServerApp.root_dir={tmp_path / 'nb'}", '--LabApp.news_url=None'],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(240):
            try: urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=1); break
            except OSError: time.sleep(0.5)
        else: pytest.fail('JupyterLab did not start: ' + (tmp_path / 'lab.log').read_text()[-2000:])
        yield base, token
    finally:
        proc.terminate(); proc.wait(timeout=30)

_STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'     # a cell's error output
_FAILED = (f"Array.from(document.querySelectorAll('{_STDERR}'))"
           ".some(e => /Error|Traceback/.test(e.textContent))")

def _open_and_run_all(page, base, token, name, tmp_path):
    "Open notebook `name` from the file browser, run all cells, wait until every code cell has run without errors."
    page.goto(f'{base}/lab?token={token}')
    item = page.locator('.jp-DirListing-item', has_text=name)
    item.wait_for(timeout=90000)
    page.wait_for_timeout(1000)
    item.dblclick()                                  # from the file browser: avoids the kernel-dialog race
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90000)
    page.wait_for_timeout(1000)
    if page.get_by_text('Select Kernel', exact=True).is_visible():
        page.get_by_role('button', name='Select', exact=True).click()
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90000)
    # the kernel must be connected and idle (status bar), or "Run All" can be lost
    page.wait_for_function("document.body.innerText.includes('(ipykernel) | Idle')", timeout=120000)
    for attempt in range(3):                         # a loaded machine can drop the first click: retry
        page.get_by_role('menuitem', name='Run', exact=True).click()
        page.get_by_role('menuitem', name=re.compile(r'^Run All Cells')).click()
        try:                                         # the first slider, or a cell's error: whichever comes first
            page.wait_for_function(f"(() => document.querySelector('.noUi-handle') !== null || {_FAILED})()",
                                   timeout=120000)
            break
        except Exception:
            if attempt == 2:
                page.screenshot(path=str(tmp_path / 'stuck.png'))
                raise AssertionError(f'{name} did not run in JupyterLab; see {tmp_path / "stuck.png"} and lab.log:\n'
                                     + (tmp_path / 'lab.log').read_text()[-3000:])
    # wait until every code cell has run (each prompt shows an execution count, none '[*]' or '[ ]'), or a cell has
    # failed: Run All stops there, so the later cells would never run and the wait would last its whole limit
    page.wait_for_function("(() => { const p = Array.from(document.querySelectorAll("
                           "'.jp-CodeCell .jp-InputArea-prompt')).map(e => e.textContent);"
                           f" return (p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t))) || {_FAILED} }})()",
                           timeout=600000)
    errors = page.locator(_STDERR).all_inner_texts()
    assert not any('Error' in e or 'Traceback' in e for e in errors), errors

def test_slider_redraws_figure(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    base, token = lab
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = b.new_page(viewport={'width': 1280, 'height': 900})
            _open_and_run_all(page, base, token, 'widgets.ipynb', tmp_path)
            handle = page.locator('.noUi-handle').first
            # the first explorer's cell: its slider and, below it, its figure (a plain PNG output)
            handle.scroll_into_view_if_needed()
            cell = page.locator('.jp-CodeCell', has=page.locator('.noUi-handle')).first
            img = cell.locator('.jp-OutputArea-output img').first
            img.wait_for(timeout=60000)
            before = img.get_attribute('src')
            readout = cell.locator('.widget-readout').first.inner_text().strip()
            handle.focus()
            page.keyboard.press('End')                   # ONE value change -> exactly one redraw
            page.wait_for_function("(old) => { const c = Array.from(document.querySelectorAll('.jp-CodeCell'))"
                                   ".find(c => c.querySelector('.noUi-handle')); const i = c && c.querySelector("
                                   "'.jp-OutputArea-output img'); return i && i.src !== old }", arg=before, timeout=60000)
            after = img.get_attribute('src')
            new_readout = cell.locator('.widget-readout').first.inner_text().strip()
            n_imgs = cell.locator('.jp-OutputArea-output img').count()
            page.screenshot(path=str(tmp_path / 'after.png'))
        finally:
            b.close()
    assert readout == '100' and new_readout == '1400'
    assert after != before and n_imgs == 1       # the figure was replaced in place, not appended


def _pixels(src: str):
    "The RGB pixels of a data: URL PNG."
    import base64, io
    import matplotlib.image as mpimg
    return mpimg.imread(io.BytesIO(base64.b64decode(src.split(',', 1)[1])), format='png')[..., :3]

def test_every_chapter_widget_reruns(lab, tmp_path):
    "Each chapter's widget(): move its main slider to the end; its figure must be replaced by one with other pixels."
    import numpy as np
    from playwright.sync_api import sync_playwright
    base, token = lab
    changed = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = b.new_page(viewport={'width': 1400, 'height': 1000})
            _open_and_run_all(page, base, token, 'chapters.ipynb', tmp_path)
            cells = page.locator('.jp-CodeCell', has=page.locator('.noUi-handle'))
            assert cells.count() == len(CHAPTER_WIDGETS), f'{cells.count()} cells with a slider'
            for i, m in enumerate(CHAPTER_WIDGETS):
                cell = cells.nth(i)
                cell.scroll_into_view_if_needed()
                img = cell.locator('.jp-OutputArea-output img').first
                img.wait_for(timeout=60000)
                before = img.get_attribute('src')
                handle = cell.locator('.noUi-handle').first
                handle.focus()
                page.keyboard.press('End')                # the main slider to its last value: one rerun
                page.wait_for_function("([i, old]) => { const c = Array.from(document.querySelectorAll('.jp-CodeCell'))"
                                       ".filter(c => c.querySelector('.noUi-handle'))[i]; const im = c && c.querySelector("
                                       "'.jp-OutputArea-output img'); return im && im.src !== old }", arg=[i, before],
                                       timeout=180000)
                after = img.get_attribute('src')
                a, z = _pixels(before), _pixels(after)
                diff = 1.0 if a.shape != z.shape else float((np.abs(a - z).sum(-1) > 0.05).mean())
                changed[m] = (diff, cell.locator('.jp-OutputArea-output img').count())
                page.screenshot(path=str(tmp_path / f'{m}_after.png'))
        finally:
            b.close()
    for m, (diff, n_imgs) in changed.items():
        assert diff > 0.002, f'{m}: the figure did not visibly change ({diff:.2%} of pixels)'
        assert n_imgs == 1, f'{m}: the figure was appended, not replaced ({n_imgs} images)'


def test_a_cell_error_fails_the_run_at_once(lab, tmp_path):
    """A cell that raises ends the wait with the error itself (an AssertionError quoting it), not with a wait that runs
    out its limit: the cells after it never run, so waiting for every cell would last the whole 10 minutes."""
    from playwright.sync_api import sync_playwright
    base, token = lab
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = b.new_page(viewport={'width': 1280, 'height': 900})
            with pytest.raises(AssertionError, match='this cell fails on purpose'):
                _open_and_run_all(page, base, token, 'failing.ipynb', tmp_path)
        finally:
            b.close()
