import math
import numpy as np
import pytest
import torch
from torch import nn
from adaptbook import core
from adaptbook.core import (Results, Ledger, average_accuracy, forgetting, backward_transfer, stream_metrics,
                            fit, evaluate, seed_everything, get_device, get_mode, nbytes)

# --- task-stream metrics against matrices worked by hand ---

def test_metrics_one_task():
    assert stream_metrics([[0.7]]) == {'avg_acc': 0.7, 'forgetting': 0.0, 'bwt': 0.0}

def test_metrics_two_tasks():
    # after task 2: task 1 at .6 (was .9), task 2 at .8 -> avg .7, forgetting .3, bwt -.3
    R = [[0.9, 0.0], [0.6, 0.8]]
    assert average_accuracy(R) == pytest.approx(0.7)
    assert forgetting(R) == pytest.approx(0.3)
    assert backward_transfer(R) == pytest.approx(-0.3)

def test_metrics_two_tasks_positive_transfer():
    R = [[0.5, 0.1], [0.7, 0.9]]      # learning task 2 helped task 1
    assert forgetting(R) == pytest.approx(-0.2)
    assert backward_transfer(R) == pytest.approx(0.2)

def test_metrics_three_tasks_peak_not_diagonal():
    # task 1 peaks after task 2 (.95), not on the diagonal (.9): forgetting uses the peak, BWT the diagonal
    R = torch.tensor([[0.9, 0.2, 0.1], [0.95, 0.8, 0.1], [0.5, 0.6, 0.9]])
    assert average_accuracy(R) == pytest.approx((0.5 + 0.6 + 0.9) / 3)
    assert forgetting(R) == pytest.approx(((0.95 - 0.5) + (0.8 - 0.6)) / 2)
    assert backward_transfer(R) == pytest.approx(((0.5 - 0.9) + (0.6 - 0.8)) / 2)

@pytest.mark.parametrize('R', [[], [[1, 2]], [[1, 2], [3]], [[float('nan')]]])
def test_metrics_bad_matrix(R):
    with pytest.raises(ValueError, match='R '):
        forgetting(R)

# --- Results ---

def _results():
    r = Results(meta={'name': 't', 'x': 'memory', 'settings': {'delta': 5.0, 'classes': (0, 1)}})
    for i, m in enumerate([0.02, 0.1, 1.0]):
        r.add(method='kprior', memory=m, acc=1 / 3 + i, nll=float('nan'), weight_err=0.1 ** (i + 7),
              examples=np.int64(17), ok=True, tag=None, arr=torch.tensor([1.5, 2.5]), seed=0)
    r.add(method='batch', memory=1.0, acc=0.9, seed=0, big=2 ** 62, tiny=5e-324)
    return r

def test_results_json_roundtrip_exact(tmp_path):
    r = _results()
    back = Results.from_json(r.to_json())
    assert back == r
    for a, b in zip(r.rows, back.rows):
        for k in a:
            va, vb = a[k], b[k]
            if isinstance(va, float) and math.isnan(va): assert math.isnan(vb)
            else: assert va == vb and type(va) == type(vb), k
    p = tmp_path / 'r.json'; r.to_json(p)
    assert Results.from_json(p) == r
    assert Results.from_json(p).to_json() == r.to_json()          # byte-identical the second time round

def test_results_values_are_plain():
    r = _results()
    assert r.rows[0]['arr'] == [1.5, 2.5] and type(r.rows[0]['examples']) is int
    assert r.meta['settings']['classes'] == [0, 1]
    with pytest.raises(TypeError, match='got object'):
        r.add(x=object())

def test_results_helpers():
    r = _results()
    assert len(r.where(method='kprior')) == 3 and r.col('memory') == [0.02, 0.1, 1.0, 1.0]
    assert '| method |' in r.table(['method', 'acc'])
    with pytest.raises(ValueError, match="'rows'"):
        Results.from_json('{"meta": {}}')

def test_plot_draws_retrain_line():
    import matplotlib; matplotlib.use('Agg')
    ax = _results().plot(x='memory', y='acc', retrain='batch', logx=True)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert 'kprior' in labels and 'batch (retrain)' in labels
    assert ax.get_xscale() == 'log'

# --- ledger, loop, seeds, modes ---

def test_ledger_counts_and_state():
    led = Ledger('cpu')
    with led:
        led.forward(10); led.backward(4); led.step(3)
        _ = torch.ones(2_000_000)             # 8 MB, held while sampled
        import time; time.sleep(0.05)
    d = led.as_dict()
    assert (d['fwd_examples'], d['bwd_examples'], d['steps'], d['examples']) == (10, 4, 3, 10)
    assert d['seconds'] >= 0.05
    assert led.carry(torch.zeros(3, dtype=torch.float64), [torch.zeros(2, dtype=torch.uint8)]) == 26
    total = led + led
    assert total.fwd_examples == 20 and total.state_bytes == 26

def test_nbytes_bad():
    with pytest.raises(TypeError, match='nbytes got a str'):
        nbytes('x')

def test_fit_is_deterministic_and_counts():
    X, y = torch.randn(200, 5), torch.randint(0, 3, (200,))
    out = []
    for _ in range(2):
        seed_everything(1); m = nn.Linear(5, 3); led = Ledger('cpu')
        h = fit(m, X, y, epochs=3, bs=64, lr=0.1, ledger=led, verbose=False, device='cpu')
        out.append((h, m.weight.detach().clone(), led.fwd_examples, led.steps))
    assert out[0][0] == out[1][0] and torch.equal(out[0][1], out[1][1])
    assert out[0][2] == 600 and out[0][3] == 3 * 4
    assert set(evaluate(m, X, y, device='cpu')) == {'acc', 'nll'}

@pytest.mark.parametrize('kw,msg', [({'epochs': 0}, 'epochs=0'), ({'bs': 0}, 'bs=0'), ({'opt': 'lbfgs'}, "opt='lbfgs'")])
def test_fit_bad_args(kw, msg):
    with pytest.raises(ValueError, match=msg):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), verbose=False, **kw)

def test_fit_mismatched_lengths():
    with pytest.raises(ValueError, match='X has 4 rows but y has 3'):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), verbose=False)

def test_device_seed_mode(monkeypatch):
    assert get_device('cpu').type == 'cpu'
    monkeypatch.setenv('ADAPTBOOK_DEVICE', 'cpu'); assert get_device().type == 'cpu'
    with pytest.raises(ValueError, match="device='nope'"): get_device('nope')
    with pytest.raises(TypeError, match='seed'): seed_everything(1.5)
    monkeypatch.setenv('ADAPTBOOK_MODE', 'full'); assert get_mode() == 'full'
    monkeypatch.setenv('ADAPTBOOK_MODE', 'fast')
    with pytest.raises(ValueError, match="mode='fast'"): get_mode()

def test_intro_experiment_deterministic():
    from adaptbook import intro
    a = intro.experiment('digits', chunks=3, epochs=2)
    b = intro.experiment('digits', chunks=3, epochs=2)
    assert a.stable() == b.stable() and len(a) == 2
    core.check_rows(a)
    ret, fin = a.where(method='retrain')[0], a.where(method='finetune')[0]
    assert ret['examples'] > fin['examples'] and ret['role'] == 'retrain' and fin['role'] == 'adapt'

# --- validators ---

@pytest.mark.parametrize('call,msg', [
    (lambda: core.check_choice('task', 'x', ('a', 'b')), r"task='x' is not known; use one of \('a', 'b'\)"),
    (lambda: core.check_choice('task', ['unhashable'], ('a',)), r"task=\['unhashable'\] is not known"),
    (lambda: core.check_int('keys', 0), 'keys=0 must be an int in 1..'),
    (lambda: core.check_int('keys', 3.0), 'keys=3.0'),
    (lambda: core.check_int('keys', True), 'keys=True'),
    (lambda: core.check_int('topk', 9, 1, 8), 'topk=9 must be an int in 1..8'),
    (lambda: core.check_number('memory', 0.0, 0, 1, lo_open=True), r'memory=0.0 must be in \(0, 1\]'),
    (lambda: core.check_number('memory', float('inf')), 'finite'),
    (lambda: core.check_number('memory', '0.1'), 'finite number'),
    (lambda: core.as_tuple('memory', ()), 'memory=\\(\\) is empty'),
])
def test_validators(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()

def test_as_tuple():
    assert core.as_tuple('m', 'kprior') == ('kprior',) and core.as_tuple('m', 0.5) == (0.5,)
    assert core.as_tuple('m', [1, 2], lambda v: core.check_int('m', v)) == (1, 2)

# --- learning curves, the row schema, mean over seeds ---

def _train_with_curve(seed=0, epochs=3):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(300, 4, generator=g), torch.randint(0, 3, (300,), generator=g)
    seed_everything(seed)
    m, led = nn.Linear(4, 3), Ledger('cpu')
    c = core.Curve(lambda: evaluate(m, X, y, device='cpu')['acc'], led)
    c.record()
    fit(m, X, y, epochs=epochs, bs=32, lr=0.1, ledger=led, curve=c, verbose=False, device='cpu', seed=seed)
    c.finish()
    return led, c

def test_curve_checkpoints_geometric_and_free():
    led, c = _train_with_curve()
    assert c.examples[0] == 0 and c.examples[-1] == led.fwd_examples == 900
    assert all(b > a for a, b in zip(c.examples, c.examples[1:]))
    ratios = [b / a for a, b in zip(c.examples[1:-1], c.examples[2:-1])]
    assert all(r >= 1.2 for r in ratios), ratios               # spaced about `growth` apart
    assert len(c.acc) == len(c.seconds) == len(c.examples)
    assert all(b >= a for a, b in zip(c.seconds, c.seconds[1:]))
    # measuring costs nothing: the ledger counts exactly the training examples
    assert led.fwd_examples == 900 and led.steps == 3 * 10

def test_ledger_paused_excludes_time():
    import time
    led = Ledger('cpu')
    with led:
        with led.paused(): time.sleep(0.2)
    assert led.seconds < 0.1

def test_curve_bad():
    with pytest.raises(TypeError, match='evaluate'):
        core.Curve(0.5, Ledger('cpu'))
    with pytest.raises(ValueError, match='growth=1'):
        core.Curve(lambda: 0.5, Ledger('cpu'), growth=1)

def test_record_schema_and_mean():
    res = core.new_results('t', 'memory', 'digits', seed=0, mode='quick')
    for seed in (0, 1, 2):
        led, c = _train_with_curve(seed)
        res.record('retrain', 'retrain', c.acc[-1], seed=seed, ledger=led, curve=c, memory=None)
        led, c = _train_with_curve(seed, epochs=1)
        res.record('adapt', 'adapt', c.acc[-1], seed=seed, ledger=led, curve=c, memory=0.1, extra=seed * 1.0)
    core.check_rows(res)
    assert res.meta['knob'] == 'memory' and res.meta['data'] == 'digits'
    m = res.mean()
    assert len(m) == 2
    a = m.where(method='adapt')[0]
    assert a['n'] == 3 and a['seeds'] == [0, 1, 2] and a['extra'] == 1.0 and a['extra_sd'] == pytest.approx(1.0)
    assert a['examples'] == 300 and a['examples_sd'] == 0 and len(a['curve_acc']) == len(a['curve_examples'])
    assert m.where(method='retrain')[0]['memory'] is None
    with pytest.raises(ValueError, match="knob 'memory'"):
        res.record('x', 'adapt', 0.5, seed=0)
    with pytest.raises(ValueError, match="role='teacher'"):
        res.record('x', 'teacher', 0.5, seed=0, memory=None)
    with pytest.raises(ValueError, match='acc=1.5'):
        res.record('x', 'adapt', 1.5, seed=0, memory=None)

def test_check_rows_catches_missing_columns():
    r = Results([{'method': 'a', 'role': 'adapt', 'acc': 0.5, 'seed': 0}], {'knob': 'k'})
    with pytest.raises(ValueError, match="lacks"):
        core.check_rows(r)
    with pytest.raises(ValueError, match="no 'knob'"):
        core.check_rows(Results())

def test_concat_and_pandas():
    a = Results([{'method': 'x', 'acc': 0.5}], {'name': 'one'})
    b = Results([{'method': 'y', 'acc': 0.7}], {'name': 'two'})
    c = Results.concat(a, b)
    assert c.col('chapter') == ['one', 'two'] and [p['name'] for p in c.meta['parts']] == ['one', 'two']
    pd = pytest.importorskip('pandas')
    df = c.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df['acc']) == [0.5, 0.7]

def test_reach_and_curves_figure():
    import matplotlib; matplotlib.use('Agg')
    assert core.reach([0, 10, 100], [0.1, 0.895, 0.9]) == (10.0, 0.895)
    assert core.reach([0, 10], [0.1, 0.5], target=0.9) is None
    res = core.new_results('t', 'memory', 'digits', seed=0, mode='quick')
    led, c = _train_with_curve()
    res.record('retrain', 'retrain', c.acc[-1], seed=0, ledger=led, curve=c, memory=None)
    ax = core.retrain_vs_adapt_curves(res)
    assert ax.get_xscale() == 'log' and [t.get_text() for t in ax.get_legend().get_texts()] == ['retrain']
    with pytest.raises(ValueError, match='no rows with a learning curve'):
        core.retrain_vs_adapt_curves(Results([{'method': 'a'}]))

def test_merge_seeds():
    a = core.new_results('t', 'k', 'digits', seed=0, mode='quick')
    b = core.new_results('t', 'k', 'digits', seed=1, mode='quick')
    a.add(method='x', acc=0.5, seed=0)
    b.add(method='x', acc=0.7, seed=1)
    m = Results.merge(a, b, data='other')
    assert m.col('acc') == [0.5, 0.7] and m.meta['seeds'] == [0, 1] and m.meta['data'] == 'other'
    assert m.meta['knob'] == 'k' and len(a) == 1
    assert 'seed' not in m.meta                                   # several seeds: `seed` would contradict `seeds`
    assert Results.merge(a, b, a).meta['seeds'] == [0, 1]         # two parts of one seed (zapping's iid and asb)
    one = Results.merge(a, a)
    assert one.meta['seed'] == 0 and one.meta['seeds'] == [0]
    with pytest.raises(ValueError, match='at least one'):
        Results.merge()

def _toy_run(mode=None, seed=0):
    "A chapter-shaped `run` whose result is one fixed row: what the results-cache tests cache."
    r = core.new_results('kvb', 'keys', 'digits', seed=seed, mode=core.get_mode(mode))
    r.record('retrain', 'retrain', 0.5, seed=seed, keys=None)
    return r


def test_results_cache_is_shared_by_notebook_and_module(tmp_path, monkeypatch):
    "A chapter's `run` defined in its notebook (module '__main__') and imported from adaptbook hit the same cache entry."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    calls = []
    def make(module):
        def run(mode=None, seed=0):
            calls.append(module)
            r = core.new_results('kvb', 'keys', 'digits', seed=seed, mode=core.get_mode(mode))
            r.record('retrain', 'retrain', 0.5, seed=seed, keys=None)
            return r
        run.__module__ = module
        return core.cached('kvb')(run)
    a, b = make('__main__')(), make('adaptbook.kvb')()
    assert calls == ['__main__'] and a.stable() == b.stable()
    assert a.meta['provenance']['run_digest'] == core.run_digest('kvb')
    assert a.meta['provenance']['threads'] == core.default_threads()


def test_a_result_saved_from_a_script_says_where_it_came_from():
    import json
    import adaptbook
    from adaptbook import intro
    r = intro.experiment('digits', chunks=2, epochs=1, methods=('retrain',))
    p = json.loads(r.to_json())['meta']['provenance']
    assert p['adaptbook'] == adaptbook.__version__ and p['torch'] == torch.__version__ and 'commit' in p
    assert p['cpu'] and p['threads'] >= 1 and p['mode'] == 'quick' and p['seeds'] == [0] and p['seconds'] > 0
    assert p['call'] == 'adaptbook.intro.experiment'
    again = intro.experiment('digits', chunks=2, epochs=1, methods=('retrain',)).meta['provenance']
    other = intro.experiment('digits', chunks=3, epochs=1, methods=('retrain',)).meta['provenance']
    assert again['args'] == p['args'] != other['args']              # the arguments' identity, not the run's


def test_a_damaged_results_cache_entry_is_computed_again(tmp_path, monkeypatch):
    "A truncated cache file is not read back as a result (nor does it raise): the run is computed again and rewritten."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    calls = []
    def run(mode=None, seed=0):
        calls.append(seed)
        r = core.new_results('kvb', 'keys', 'digits', seed=seed, mode=core.get_mode(mode))
        r.record('retrain', 'retrain', 0.5, seed=seed, keys=None)
        return r
    cached = core.cached('kvb')(run)
    first = cached()
    (f,) = (tmp_path / 'results').glob('kvb-*.json')
    f.write_text(f.read_text()[:40])
    again = cached()
    assert calls == [0, 0] and again.stable() == first.stable()
    assert cached().stable() == first.stable() and calls == [0, 0]      # the rewritten entry is whole


def test_the_results_cache_key_names_the_build(tmp_path, monkeypatch):
    "Another torch build or CPU kernel set gets its own entry (the last bits can differ)."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    core.cached('kvb')(_toy_run)()
    monkeypatch.setattr(torch, '__version__', '0.0.0-other')
    core.cached('kvb')(_toy_run)()
    assert len(list((tmp_path / 'results').glob('kvb-*.json'))) == 2


def test_a_second_cached_experiment_of_a_chapter_is_keyed_by_that_chapters_code(tmp_path, monkeypatch):
    "`cached(name, module=)`: its own cache entry, apart from the chapter's `run`, invalidated by the chapter's code."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    main, second = (core.cached('kvb')(_toy_run)(mode='quick'),
                    core.cached('kvb-second', module='kvb')(_toy_run)(mode='quick'))
    assert second.meta['provenance']['run_digest'] == core.run_digest('kvb') == main.meta['provenance']['run_digest']
    assert main.meta['provenance']['cache_key'] != second.meta['provenance']['cache_key']
    assert {p.name.split('-quick-')[0] for p in (tmp_path / 'results').glob('*.json')} == {'kvb', 'kvb-second'}
    with pytest.raises(ValueError, match="module='kvbb' is not one of adaptbook's modules"):
        core.cached('kvb-second', module='kvbb')
    mine = core.cached('my-experiment')(_toy_run)(mode='quick')           # a name of one's own: keyed by core, data, models
    assert mine.meta['provenance']['run_digest'] == core.run_digest('my-experiment') != core.run_digest('kvb')

# --- the one training step, its hooks, the registry, typed settings ---

def test_fit_batch_loss_clip_generator_and_epoch_hooks():
    "batch_loss sees each batch's rows; clip bounds the step; one generator drives the batches; hooks run per epoch."
    X, y = torch.randn(100, 4), torch.randint(0, 3, (100,))
    side = torch.arange(100).float()                     # side data indexed by the batch's rows (AFT's stored features)
    seen, events = [], []
    def loss(model, xb, yb, rows):
        assert torch.equal(side[rows], rows.float())     # rows index X, so side data lines up with the batch
        seen.append(rows.clone())
        return nn.functional.cross_entropy(model(xb), yb)
    m = nn.Linear(4, 3)
    hist = fit(m, X, y, epochs=2, bs=32, batch_loss=loss, verbose=False, device='cpu',
               on_epoch_start=lambda e: events.append(('start', e)), on_epoch_end=lambda e: events.append(('end', e)))
    assert len(hist) == 2 and len(seen) == 8 and sorted(torch.cat(seen[:4]).tolist()) == list(range(100))
    assert events == [('start', 0), ('end', 0), ('start', 1), ('end', 1)]
    # clipping: with lr 1 and plain SGD, one step moves the weights by at most clip
    m2 = nn.Linear(4, 3)
    before = torch.cat([p.detach().flatten() for p in m2.parameters()]).clone()
    fit(m2, X * 100, y, epochs=1, bs=None, opt=torch.optim.SGD(m2.parameters(), lr=1.0), clip=0.01, verbose=False)
    moved = torch.cat([p.detach().flatten() for p in m2.parameters()]) - before
    assert 0 < moved.norm() <= 0.01 + 1e-6
    # the same generator state gives the same batches
    order = lambda g: [b.tolist() for b in core._batches(10, 4, True, g)]
    assert order(torch.Generator().manual_seed(3)) == order(torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match='clip'):
        fit(nn.Linear(4, 3), X, y, clip=0, verbose=False)

def test_train_step_counts_one_step():
    m, led = nn.Linear(3, 2), Ledger('cpu')
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    w = m.weight.detach().clone()
    v = core.train_step(opt, m(torch.ones(5, 3)).pow(2).mean(), led, 5)
    assert isinstance(v, float) and not torch.equal(w, m.weight) and (led.fwd_examples, led.bwd_examples, led.steps) == (5, 5, 1)

def test_figures_take_labels_and_colors():
    import matplotlib; matplotlib.use('Agg')
    from matplotlib.colors import to_hex
    ax = core.retrain_vs_adapt(_results(), 'memory', 'acc', retrain='batch', labels={'kprior': 'K-prior', 'batch': 'Batch'},
                               colors={'kprior': 'red'})
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert 'K-prior' in texts and 'Batch' in texts
    assert to_hex([l for l in ax.get_lines() if l.get_label() == 'K-prior'][0].get_color()) == '#ff0000'

def test_registry_names_and_headlines_live_in_the_chapters():
    reg = core.load_chapters()
    heads, titles = core.Registered('headline'), core.Registered('title')
    assert list(heads) == [n for n in core.CHAPTERS if reg.get(n, {}).get('headline')]
    assert titles['kprior'] == 'K-priors' and 'method' in heads['kprior'] and 'reference' in heads['kprior']
    with pytest.raises(ValueError, match="must name at least 'method' and 'reference'"):
        core.register('x', headline={'method': 'a'})

def test_settings_refuse_a_misspelt_option_and_travel_in_provenance():
    from dataclasses import FrozenInstanceError
    from adaptbook import zapping as Z
    st = Z.ZappingSettings.for_mode('quick', shots=5)
    assert st.shots == 5 and st.as_dict()['shots'] == 5
    with pytest.raises(FrozenInstanceError): st.shots = 6
    with pytest.raises(TypeError, match="'shot' is not an option of ZappingSettings"):
        Z.experiment('omniglot', shot=5)
    assert core._arg_id(st) == {'ZappingSettings': core._arg_id(st.as_dict())}


def test_one_seed_has_no_spread_so_its_sd_is_nan_not_zero():
    res = core.new_results('t', 'memory', 'digits', seed=0, mode='quick')
    res.record('adapt', 'adapt', 0.5, seed=0, memory=0.1)
    res.record('adapt', 'adapt', 0.7, seed=1, memory=0.2)
    m = res.mean()
    assert all(math.isnan(r['acc_sd']) and r['n'] == 1 for r in m)
    back = core.Results.from_json(m.to_json())                     # NaN survives the JSON
    assert math.isnan(back[0]['acc_sd']) and 'nan' in m.table()


def test_reach_stay_skips_a_peak_the_curve_falls_back_from():
    "#34: the star sat on a peak (0.91) of a curve that ends at 0.77; where the curve settles is the last stretch."
    from adaptbook.core import reach
    x, acc = [10, 20, 40, 80, 160], [0.50, 0.91, 0.80, 0.772, 0.77]
    assert reach(x, acc) == (20.0, 0.91)                       # first within 0.5 pt of (or above) the end
    assert reach(x, acc, stay=True) == (80.0, 0.772)           # from here on it stays within 0.5 pt, both ways
    assert reach(x[:3], [0.5, 0.6, 0.7], stay=True) == (40.0, 0.7) == reach(x[:3], [0.5, 0.6, 0.7])
    assert reach([1, 2], [0.9, 0.5], within=0.01, target=0.95, stay=True) is None
