"""The static grid `explore` adds for pages with no kernel: which values of the main knob, the HTML, the display bundle
(widget view + text/html in one output), the docs processor that keeps only the grid, and the count's rules."""
import ipywidgets as W
import pytest
import matplotlib; matplotlib.use('Agg')
from adaptbook.widgets import _static_count, _static_values, static_grid, static_pages

@pytest.mark.parametrize('control,n,want', [
    (W.SelectionSlider(options=[4, 16, 64, 256], value=64), 5, [4, 16, 64, 256]),
    (W.SelectionSlider(options=list(range(10)), value=3), 3, [0, 3, 4, 9]),          # evenly spaced, plus the start
    (W.IntSlider(value=100, min=20, max=1400, step=20), 4, [20, 100, 480, 940, 1400]),
    (W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.25), 3, [0.0, 0.5, 1.0]),
    (W.FloatLogSlider(value=0.01, base=10, min=-3, max=-1, step=1), 3, [0.001, 0.01, 0.1]),
    (W.Dropdown(options=['a', 'b'], value='b'), 5, ['a', 'b']),
    (W.Checkbox(value=True), 5, [False, True]),
    (W.IntSlider(value=3, min=0, max=9), 0, []),
])
def test_static_values(control, n, want):
    got = [v for _, v in _static_values(control, n)]
    assert got == pytest.approx(want) if want and isinstance(want[0], float) else got == want

def test_static_grid_html_is_stable_and_plain():
    png = b'\x89PNG fake'
    g = static_grid('k', [('1', png), ('2', png + b'x')], checked=1)
    assert g == static_grid('k', [('1', png), ('2', png + b'x')], checked=1)
    assert g.count('<img') == 2 and g.count('type="radio"') == 2 and '<script' not in g
    assert 'checked><label' in g.split('k = 2')[0] and 'class="ab-static"' in g
    with pytest.raises(ValueError, match='at least one'): static_grid('k', [])

def test_static_pages_drops_the_view_only_where_a_grid_is():
    view = 'application/vnd.jupyter.widget-view+json'
    cell = {'outputs': [{'data': {view: {}, 'text/html': ['<div class="ab-static" id="x">', '</div>']}},
                        {'data': {view: {}, 'text/html': '<b>other</b>'}}, {'text': 'stream'}]}
    static_pages(cell)
    assert [list(o.get('data', {})) for o in cell['outputs']] == [['text/html'], [view, 'text/html'], []]
    static_pages({'source': 'no outputs'})

@pytest.mark.parametrize('static,env,button,want', [
    (None, {}, False, 5), (None, {'IN_TEST': '1'}, False, 0), (None, {}, True, 0), (3, {'IN_TEST': '1'}, True, 3),
    (None, {'ADAPTBOOK_STATIC': '2', 'IN_TEST': '1'}, False, 2), (0, {}, False, 0)])
def test_static_count(monkeypatch, static, env, button, want):
    for k in ('IN_TEST', 'ADAPTBOOK_STATIC'): monkeypatch.delenv(k, raising=False)
    for k, v in env.items(): monkeypatch.setenv(k, v)
    assert _static_count(static, button, True) == want

@pytest.mark.parametrize('bad', [-1, 2.5, True, '3'])
def test_static_count_bad(bad):
    with pytest.raises(ValueError, match='static='): _static_count(bad, False, True)

def test_explore_bundle_in_a_shell(monkeypatch):
    "In an IPython shell: one output with the widget view AND the grid (6 figures), then the live PNG figure."
    monkeypatch.delenv('IN_TEST', raising=False)
    from execnb.shell import CaptureShell
    shell = CaptureShell()
    try: outs = shell.run(
        "import ipywidgets as W\nfrom adaptbook.widgets import explore\n"
        "def plot(k, ax): ax.plot(range(5), [i ** k for i in range(5)]); ax.set_title(f'k={k}')\n"
        "ex = explore(lambda k: k, plot, k=W.IntSlider(value=2, min=1, max=5), static=3)")
    finally: CaptureShell.clear_instance()    # later tests must not find this shell (explore draws grids in a shell)
    datas = [set(o.get('data', {})) for o in outs if o.get('output_type') == 'display_data']
    assert {'application/vnd.jupyter.widget-view+json', 'text/html'} in datas and {'image/png', 'text/plain'} in datas
    html = next(''.join(o['data']['text/html']) for o in outs if 'text/html' in o.get('data', {}))
    assert html.count('<img') == 4 and 'k = 2</label>' in html              # 1, 3, 5 and the start 2

def test_an_explorer_shown_twice_stores_one_grid_and_one_state(monkeypatch):
    """Shown twice on one page (top of a chapter, then its Explore section): the pictures are stored once; the second
    display points to the first grid (by its id) and holds no picture of its own, and a knob change redraws both
    figures in a live kernel. Both outputs lose their widget view on a static page."""
    import re
    from adaptbook import widgets
    from adaptbook.widgets import Explorer, static_pages
    ex = Explorer(lambda n: n, lambda r, ax: ax.plot([0, r]), {'n': W.IntSlider(value=1, min=1, max=3)}, static=3)
    ex.shown = 1
    first = ex.static_html()
    ex.shown = 2
    second = ex.static_html()
    gid = re.search(r'id="(abs-\w+)"', first).group(1)
    assert first.count('<img') == 3 and '<img' not in second and f'href="#{gid}"' in second
    view = 'application/vnd.jupyter.widget-view+json'
    cell = {'outputs': [{'data': {view: {}, 'text/html': [h]}} for h in (first, second)]}
    static_pages(cell)
    assert all(view not in o['data'] for o in cell['outputs'])
    class Handle:
        def __init__(self): self.n = 0
        def update(self, *a, **k): self.n += 1
    ex.handles = [Handle(), Handle()]
    monkeypatch.setattr(widgets, '_captured', lambda: False)
    ex.redraw()
    assert [h.n for h in ex.handles] == [1, 1]


def test_sliders_outside_jupyter_say_what_they_need(capsys):
    """In plain Python (no IPython shell) a slider cannot show: say so once, print nothing (no raw widget dict), and
    keep the Explorer usable."""
    import warnings
    from adaptbook.widgets import explore
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ex = explore(lambda n: n, lambda r, ax: ax.plot([0, r]), n=W.IntSlider(value=1, min=1, max=3), static=0)
    assert any('need Jupyter' in str(x.message) for x in w), [str(x.message) for x in w]
    assert capsys.readouterr().out == '' and ex.png
    ex.set(n=2)
    assert ex.png and ex.knobs() == {'n': 2}
