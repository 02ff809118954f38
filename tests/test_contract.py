"""The experiment contract every method module keeps (core's "One experiment contract for five methods"): the same
parameter order for the shared arguments, one row schema, learning curves, and the four entry points."""
import inspect, os
import pytest
import matplotlib; matplotlib.use('Agg')
from adaptbook import cli, core, piggyback

EXPS = cli.load_chapters()
SHARED = ('methods', 'seed', 'mode', 'device', 'verbose')

# A tiny run of every registered experiment (seconds each), and which methods must be the retraining reference.
TINY = {
    'intro': dict(data='digits', kw=dict(chunks=3, epochs=2), knob_arg='chunks', retrain={'retrain'}),
    'kprior': dict(data='digits', kw=dict(memory=(1.0, 0.1)), knob_arg='memory', retrain={'batch'}),
    'piggyback': dict(data='digits', kw=dict(thresholds=(2e-3, 8e-3), epochs=2, n_labels=300, n_test=100,
                                             backbone=piggyback.build_model('mlp', (8, 8), 10), lr_head=(1e-2,),
                                             lr_classifier=(1e-2,), lr_finetune=(1e-3,), lr_scratch=(1e-3,)),
                      knob_arg='thresholds', retrain={'scratch'}),
    'kvb': dict(data='digits', kw=dict(keys=(16,), methods=('kvb', 'linear', 'mlp', 'retrain', 'ncm', 'replay', 'kvb_iid',
                                                       'linear_iid'),
                                       codebooks=8, pca_dim=16, key_epochs=1, epochs_per_task=2, n_train=600, n_test=200),
                knob_arg='keys', retrain={'retrain'}),
    'zapping': dict(data='digits', kw=dict(zap_every=(0, 1), pretrain='digits', pretrain_classes=10, pretrain_epochs=2,
                                           episodes=4, widths=(4, 4, 4), hidden=16, n_classes=4, shots=5, iid_epochs=2,
                                           scratch_epochs=2, lrs=(1e-2,)),
                    knob_arg='zap_every', retrain={'scratch'}),
    'aft': dict(data='digits', kw=dict(beta=(1,), n_labels=100, teacher_pool=500, epochs=20, teacher_epochs=3, n_test=200),
                knob_arg='beta', retrain={'stl'}),
}

def _present():
    here = os.path.dirname(cli.__file__)
    return [m for m in cli.CHAPTERS if os.path.exists(os.path.join(here, f'{m}.py'))]

def test_every_chapter_has_the_four_entry_points():
    for m in _present():
        e = EXPS[m]
        assert callable(e['run']) and callable(e['figure']) and callable(e['experiment']), m
        if m != 'intro': assert callable(e['widget']), f'{m} registers no widget'

@pytest.mark.parametrize('name', _present())
def test_shared_parameter_order(name):
    params = list(inspect.signature(EXPS[name]['experiment']).parameters.values())
    assert params[0].name == 'data' and params[0].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
    kw = [p.name for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
    assert len(kw) == len([p for p in params[1:] if p.kind != inspect.Parameter.VAR_KEYWORD]), \
        f'{name}: every argument after data must be keyword-only'
    assert kw[0] == TINY[name]['knob_arg'], f'{name}: the swept knob must come first, got {kw[:3]}'
    assert tuple(kw[1:6]) == SHARED, f'{name}: shared arguments out of order: {kw[1:6]}'

@pytest.mark.parametrize('name', _present())
def test_row_schema(name):
    t = TINY[name]
    res = EXPS[name]['experiment'](t['data'], **t['kw'])
    core.check_rows(res)
    knob = res.meta['knob']
    assert {r['method'] for r in res if r['role'] == 'retrain'} == t['retrain'], 'exactly the retrain rows are retrain'
    assert any(r['role'] == 'adapt' for r in res)
    for r in res:
        if r['role'] in ('retrain', 'adapt'):
            ex = r['curve_examples']
            assert len(ex) >= 2 and ex[0] == 0 and ex == sorted(ex), (r['method'], ex[:5])
            assert ex[-1] <= r['examples'], (r['method'], ex[-1], r['examples'])
            assert all(0 <= a <= 1 for a in r['curve_acc'])
        for c in core.COST:
            if c == 'peak_mem' and r[c] is None: continue          # not measurable on this device: left out
            assert isinstance(r[c], (int, float)), (r['method'], c)
    assert knob in res[0]
    fig = EXPS[name]['figure'](res)
    assert fig.axes, f'{name}: figure(res) drew nothing'
