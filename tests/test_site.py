"""The tutorial site in a real browser: `tools/site.py` builds `_site/` (nbdev's `_proc/` rendered with nbconvert,
offline MathJax), a local HTTP server serves it, and Debian's Chromium driven by playwright opens every page.

Checks on every page: no console errors, every figure decoded (`naturalWidth > 0`), no traceback in any output, the
maths typeset (no raw TeX, no MathJax error), the sidebar lists every page in `nbs/sidebar.yml`'s order with the
landing page first and its links resolve. On the widgets chapter, clicking a static-slider tab changes the figure.

Screenshots (test artifacts): `test-artifacts/site/<page>.png` for every page, plus `kprior_figure.png` (the K-priors
chapter's first figure) and `static_slider.png` (a static grid after a tab was clicked). The site is rebuilt unless
`_site/` is newer than every notebook and tools/site.py (set ADAPTBOOK_SITE_REBUILD=1 to force)."""
import functools, html, http.server, json, os, shutil, subprocess, sys, threading, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / '_site'
ARTIFACTS = ROOT / 'test-artifacts' / 'site'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
if not os.path.exists(CHROMIUM):
    if os.environ.get('CI'): raise RuntimeError('CI=true but Debian chromium is not installed; .ci/run installs it')
    pytest.skip('Debian chromium not installed (apt-get install chromium)', allow_module_level=True)
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']

def _fresh() -> bool:
    "_site/ was built after the last change to any notebook, sidebar or the builder."
    stamp = SITE / 'site.json'
    if os.environ.get('ADAPTBOOK_SITE_REBUILD') or not stamp.exists(): return False
    inputs = list((ROOT / 'nbs').glob('*.ipynb')) + [ROOT / 'nbs' / 'sidebar.yml', ROOT / 'tools' / 'site.py',
                                                     ROOT / 'adaptbook' / 'widgets.py']
    return stamp.stat().st_mtime > max(p.stat().st_mtime for p in inputs if p.exists())

@pytest.fixture(scope='module')
def site():
    "Build (or reuse a fresh) _site/, serve it on 127.0.0.1, yield (base URL, page list)."
    if not _fresh():
        r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'site.py')], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert r.returncode == 0, f'tools/site.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    pages = json.loads((SITE / 'site.json').read_text())['pages']
    handler = functools.partial(type('Quiet', (http.server.SimpleHTTPRequestHandler,),
                                     {'log_message': lambda *a: None}), directory=str(SITE))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try: yield f'http://127.0.0.1:{srv.server_address[1]}', pages
    finally: srv.shutdown()

@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try: yield b
        finally: b.close()

def _sidebar_order():
    import yaml
    items = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    flat = [j for i in items for j in (i.get('contents', []) if isinstance(i, dict) else [i])]   # sections flattened
    names = [Path(i).stem + '.html' for i in flat if isinstance(i, str) and i.endswith('.ipynb')]
    return ['index.html'] + [n for n in names if n != 'index.html']

# what a page must show: every <img> decoded; TeX left untypeset or a MathJax error; a traceback in an output
_PAGE_STATE = """() => {
  const imgs = Array.from(document.querySelectorAll('main img'));
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.alt || i.src).slice(0, 60));
  const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText);
  const tb = outs.filter(t => /Traceback \\(most recent call last\\)|^\\w+Error: /m.test(t)).map(t => t.slice(0, 300));
  const md = Array.from(document.querySelectorAll('.jp-MarkdownOutput, .jp-RenderedMarkdown')).map(e => e.innerText).join('\\n');
  const rawTex = (md.match(/\\$\\$[^$]+\\$\\$|\\$[^$\\s][^$\\n]*?\\$/g) || []).slice(0, 5);
  return {n_img: imgs.length, bad_img: bad, tracebacks: tb, raw_tex: rawTex,
          n_math: document.querySelectorAll('script[type^="math/tex"]').length,
          n_typeset: document.querySelectorAll('span.MathJax, span.MathJax_SVG, span.MathJax_CHTML').length,
          math_errors: document.querySelectorAll('.MathJax_Error, merror, .merror').length,
          sidebar: Array.from(document.querySelectorAll('nav.ab-sidebar a.ab-page')).map(a => a.getAttribute('href')),
          n_static: document.querySelectorAll('.ab-static').length};
}"""

def test_every_page(site, browser):
    base, pages = site
    assert pages[0] == 'index.html' and pages == _sidebar_order(), pages
    problems, states = {}, {}
    for name in pages:
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        errors = []
        page.on('console', lambda m, e=errors: m.type == 'error' and e.append(m.text))
        page.on('pageerror', lambda exc, e=errors: e.append(str(exc)))
        page.on('requestfailed', lambda r, e=errors: e.append(f'request failed: {r.url[:100]}'))
        page.goto(f'{base}/{name}', wait_until='load')
        page.wait_for_function("document.body.dataset.mathjax === 'done'", timeout=60000)
        s = page.evaluate(_PAGE_STATE)
        states[name] = s
        page.screenshot(path=str(ARTIFACTS / (Path(name).stem + '.png')))
        if name == '10_kprior.html' and s['n_img']:     # the chapter's headline figure: the first after 'Retrain vs adapt'
            page.evaluate("() => { const h = Array.from(document.querySelectorAll('main h2'))"
                          ".find(e => /retrain vs adapt/i.test(e.textContent)); const imgs = Array.from("
                          "document.querySelectorAll('main .jp-OutputArea-output img')); const i = (h && imgs.find(i =>"
                          " h.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING)) || imgs[0];"
                          " i.scrollIntoView({block: 'center'}) }")
            page.screenshot(path=str(ARTIFACTS / 'kprior_figure.png'))
        page.close()
        p = {k: v for k, v in dict(console=errors, bad_img=s['bad_img'], tracebacks=s['tracebacks'],
                                    raw_tex=s['raw_tex'], math_errors=s['math_errors']).items() if v}
        if s['n_math'] != s['n_typeset']:
            p['untypeset'] = f"{s['n_math']} TeX scripts, {s['n_typeset']} typeset"
        if s['sidebar'] != pages: p['sidebar'] = s['sidebar']
        if p: problems[name] = p
    (ARTIFACTS / 'pages.json').write_text(json.dumps(states, indent=1))
    assert not problems, json.dumps(problems, indent=1)
    assert sum(s['n_img'] for s in states.values()) > 10 and states['10_kprior.html']['n_math'] > 0

def test_sidebar_links_resolve(site):
    base, pages = site
    for name in pages:
        with urllib.request.urlopen(f'{base}/{name}', timeout=10) as r:
            assert r.status == 200 and b'nav class="ab-sidebar"' in r.read(), name

def test_static_slider_tab_changes_figure(site, browser):
    "The widgets chapter's first explorer, on a page with no kernel: a row of tabs; another tab, another figure."
    base, _ = site
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    try:
        page.goto(f'{base}/02_widgets.html', wait_until='load')
        grid = page.locator('.ab-static').first
        grid.scroll_into_view_if_needed()
        visible = ("g => { const v = Array.from(g.querySelectorAll('.ab-panel img')).filter(i => i.offsetParent !== null);"
                   " return v.map(i => i.src.length + ':' + i.src.slice(-40)) }")
        before = grid.evaluate(visible)
        labels = grid.locator('label')
        assert labels.count() >= 3, labels.all_inner_texts()
        checked = grid.evaluate("g => Array.from(g.querySelectorAll('input')).findIndex(i => i.checked)")
        target = labels.count() - 1 if checked != labels.count() - 1 else 0
        labels.nth(target).click()
        after = grid.evaluate(visible)
        grid.screenshot(path=str(ARTIFACTS / 'static_slider.png'))
    finally:
        page.close()
    assert len(before) == 1 and len(after) == 1 and before != after, (before, after)

def test_pager_and_folded_setup(site):
    "Previous/next links follow the sidebar's order; a chapter's set-up (data) cell is folded, not in the reading path."
    base, pages = site
    for i, name in enumerate(pages):
        with urllib.request.urlopen(f'{base}/{name}', timeout=10) as r: text = r.read().decode()
        pager = text[text.index('<nav class="ab-pager">'):]
        pager = pager[:pager.index('</nav>')]
        if i > 0: assert f'href="{pages[i - 1]}"' in pager and 'ab-prev' in pager, (name, pager)
        else: assert 'ab-prev' not in pager, pager
        if i + 1 < len(pages): assert f'href="{pages[i + 1]}"' in pager and 'ab-next' in pager, (name, pager)
        else: assert 'ab-next' not in pager, pager
    for name in ('10_kprior', '20_zapping', '30_piggyback', '40_aft', '50_kvb'):   # one set-up fold per chapter (#34)
        with urllib.request.urlopen(f'{base}/{name}.html', timeout=10) as r: text = r.read().decode()
        assert text.count('<summary>Set-up: the data this chapter reads</summary>') == 1, name
        nb = json.loads((ROOT / 'nbs' / f'{name}.ipynb').read_text())
        title = next(''.join(c['source']) for c in nb['cells'] if ''.join(c['source']).startswith('# '))
        desc = title.split('> ', 1)[1].strip()                # the subtitle, whole, on the page
        assert html.escape(desc, quote=False) in text or desc in text, (name, desc)
