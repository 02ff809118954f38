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
    a = core.growing_data('digits', chunks=3, epochs=2)
    b = core.growing_data('digits', chunks=3, epochs=2)
    assert a.stable() == b.stable() and len(a) == 6
    assert a.where(method='retrain').col('total_examples')[-1] > a.where(method='finetune').col('total_examples')[-1]
