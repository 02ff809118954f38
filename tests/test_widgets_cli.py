import os, subprocess
import pytest
import ipywidgets as W
import matplotlib; matplotlib.use('Agg')
from adaptbook.widgets import explore
from adaptbook import cli, core

def _explorer(**kw):
    calls = []
    def run(k, shape='line'):
        calls.append((k, shape)); return k
    def plot(k, ax): ax.plot(range(5), [i ** k for i in range(5)]); ax.set_title(f'k={k}')
    return explore(run, plot, k=W.IntSlider(value=1, min=1, max=5), shape=['line', 'bar'], **kw), calls

def test_explore_redraws_and_caches():
    ex, calls = _explorer()
    first = ex.figure
    assert first.axes[0].get_title() == 'k=1' and ex.controls['k'].continuous_update is False
    ex.set(k=3)
    assert ex.figure is not first and ex.figure.axes[0].get_title() == 'k=3'
    assert ex.draw().data[:8] == ex.png[:8] == b'\x89PNG\r\n\x1a\n'   # a PNG, whatever the matplotlib backend
    ex.set(k=1)                                   # seen before: from the cache
    assert calls == [(1, 'line'), (3, 'line')] and ex.figure.axes[0].get_title() == 'k=1'
    assert isinstance(ex.controls['shape'], W.Dropdown)

def test_explore_button_waits():
    ex, calls = _explorer(button=True)
    ex.set(k=4)
    assert calls == [(1, 'line')] and ex.status.value == 'changed: press Run'
    ex.button.click()
    assert calls[-1] == (4, 'line') and ex.figure.axes[0].get_title() == 'k=4'

def test_explore_bad_knobs():
    with pytest.raises(ValueError, match='at least one knob'):
        explore(lambda: 0, lambda r, ax: None)
    with pytest.raises(TypeError, match='k=3'):
        explore(lambda k: 0, lambda r, ax: None, k=3)
    ex, _ = _explorer()
    with pytest.raises(ValueError, match="knob 'z'"):
        ex.set(z=1)

def test_cli_data_lists_every_dataset(shared_data):
    out = subprocess.run(['adaptbook', 'data'], capture_output=True, text=True, check=True,
                         env=dict(os.environ, ADAPTBOOK_DATA=shared_data)).stdout
    for name in ['a7a', 'blobs', 'digits', 'fashion-mnist', 'mnist', 'omniglot', 'usps']:
        line = next(l for l in out.splitlines() if l.startswith(name + ' '))
        assert ' ok ' in line, line
    assert '<adaptbook>/pack/mnist.npz' in out and '$ADAPTBOOK_DATA/fashion-mnist' in out
    assert 'searched: <adaptbook>/pack, $ADAPTBOOK_DATA' in out

def test_cli_data_reports_missing(tmp_path):
    "With no data folder and an empty home, the pack's datasets are there and Fashion-MNIST is missing (its test split packed)."
    out = subprocess.run(['adaptbook', 'data'], capture_output=True, text=True, check=True,
                         env=dict(os.environ, ADAPTBOOK_DATA=str(tmp_path), HOME=str(tmp_path))).stdout
    lines = {l.split()[0]: l for l in out.splitlines()[1:-1]}
    assert 'missing' in lines['fashion-mnist'] and 'test split' in lines['fashion-mnist']
    assert all(' ok ' in lines[n] and 'whole' in lines[n] for n in ('mnist', 'usps', 'a7a', 'omniglot'))

def test_cli_run_writes_outputs(tmp_path):
    r = subprocess.run(['adaptbook', 'run', 'intro', '--out', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ['intro.json', 'intro.md', 'intro.png']
    res = core.Results.from_json(tmp_path / 'intro.json')
    assert res.meta['mode'] == 'quick' and {'retrain', 'finetune'} == set(res.col('method'))
    assert open(tmp_path / 'intro.png', 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
    assert '| method |' in (tmp_path / 'intro.md').read_text()

def test_cli_errors():
    assert cli.main(['run', 'nope']) == 2
    r = subprocess.run(['adaptbook', 'run', 'intro', '--mode', 'fast'], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice: 'fast'" in r.stderr

def test_every_chapter_registers():
    exps = cli.load_chapters()
    present = [m for m in cli.CHAPTERS if os.path.exists(os.path.join(os.path.dirname(cli.__file__), f'{m}.py'))]
    for m in present:
        assert m in exps, f'adaptbook/{m}.py exists but registers no experiment named {m!r}'

def test_curves_widget_reruns_adaptation_only():
    from adaptbook.widgets import curves_widget
    calls = []
    def experiment(data, *, epochs=(1,), methods=('retrain', 'finetune'), seed=0, lr=0.05):
        calls.append((tuple(methods), tuple(epochs)))
        res = core.new_results('toy', 'epochs', data, seed=seed, mode='quick')
        for m in methods:
            e = epochs[0] if m == 'finetune' else None
            acc = 0.9 if m == 'retrain' else 0.5 + 0.05 * e
            res.add(method=m, role='retrain' if m == 'retrain' else 'adapt', acc=acc, seed=seed, epochs=e,
                    curve_examples=[0, 100 * (e or 10)], curve_seconds=[0.0, 0.1], curve_acc=[0.1, acc])
        return res
    w = curves_widget(experiment, 'toy', knob='epochs', control=W.SelectionSlider(options=[1, 2, 4]),
                      adapt=('finetune',), retrain=('retrain',))
    first = w.png
    w.set(epochs=4)
    assert w.png != first
    assert calls == [(('retrain',), (1,)), (('finetune',), (1,)), (('finetune',), (4,))]   # retrain ran once
    w.set(epochs=1)
    assert len(calls) == 3                                   # a setting seen before comes from the cache


def test_the_intro_figure_has_one_legend_entry_per_method_whatever_the_seeds():
    import matplotlib.pyplot as plt
    from adaptbook import intro
    res = core.Results.merge(*[intro.experiment('digits', chunks=3, epochs=2, seed=s) for s in (0, 1)])
    fig = intro.figure(res)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ['retrain (mean of 2 seeds)', 'finetune (mean of 2 seeds)'], labels
    plt.close(fig)
