"Tests of the Adaptive Feature Transfer chapter (adaptbook.aft)."
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptbook.aft import (AFTPrior, KDPrior, aft_regularizer, centred_kernel, experiment, inference_cost,
                           split_pools, student_forward, train_student)
from adaptbook.core import Results, check_rows
from adaptbook.data import load
from adaptbook.models import mlp

TINY = dict(beta=(0, 1), n_labels=100, teacher_pool=500, epochs=20, teacher_epochs=3, n_test=200)


def _feats(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randn(n, 20, generator=g), g


# --- the regulariser: identities the maths promises ---------------------------------------------------------------
def test_zero_when_student_features_are_the_teacher_features():
    _, psi, _ = _feats()
    assert aft_regularizer(psi, psi).item() == pytest.approx(1e-4, abs=1e-7)          # sqrt(0 + 1e-8)
    assert aft_regularizer(psi, psi, torch.ones(20)).item() == pytest.approx(1e-4, abs=1e-7)
    rho = torch.rand(20) + 0.1
    assert aft_regularizer(psi * rho, psi, rho).item() == pytest.approx(1e-4, abs=1e-7)


def test_invariant_to_shifts_and_global_scales_of_either_side():
    phi, psi, g = _feats()
    r = aft_regularizer(phi, psi).item()
    assert r > 0.1
    for a, b in [(phi + torch.randn(8, generator=g), psi), (phi, psi - 7 * torch.rand(20, generator=g)),
                 (5 * phi, psi), (phi, 0.01 * psi), (phi @ torch.linalg.qr(torch.randn(8, 8, generator=g))[0], psi)]:
        assert aft_regularizer(a, b).item() == pytest.approx(r, abs=1e-5)


def test_row_normalisation_ignores_row_length_after_centring_but_centring_comes_first():
    phi, psi, g = _feats()
    c = psi - psi.mean(0)
    scale = torch.rand(32, 1, generator=g) + 0.1
    cos = lambda Z: F.normalize(Z, dim=1) @ F.normalize(Z, dim=1).T
    assert torch.allclose(cos(scale * c), cos(c), atol=1e-5)
    K = centred_kernel(psi)
    assert torch.allclose(K.diagonal(), torch.ones(32), atol=1e-5) and torch.allclose(K, K.T)
    assert K.abs().max() <= 1 + 1e-5                                                  # a cosine kernel
    assert abs(aft_regularizer(phi, scale * psi).item() - aft_regularizer(phi, psi).item()) > 1e-3


def test_bad_shapes_raise():
    phi, psi, _ = _feats()
    with pytest.raises(ValueError, match='same B'): aft_regularizer(phi[:5], psi)
    with pytest.raises(ValueError, match='one weight per teacher feature'): aft_regularizer(phi, psi, torch.ones(3))
    with pytest.raises(ValueError, match='B×d'): centred_kernel(torch.zeros(3))


# --- rho ----------------------------------------------------------------------------------------------------------
def test_rho_in_open_interval_and_gets_gradient_only_from_the_regulariser():
    prior = AFTPrior(20)
    assert torch.equal(prior.rho.detach(), torch.full((20,), 0.5))
    net = mlp(8, 3, hidden=(6,), seed=0)
    phi_in, psi, _ = _feats()
    logits, phi = student_forward(net, phi_in)
    F.cross_entropy(logits, torch.arange(32) % 3).backward(retain_graph=True)
    assert prior.s.grad is None
    prior(phi, psi).backward()
    assert prior.s.grad.abs().sum() > 0
    with torch.no_grad(): prior.s.copy_(torch.linspace(-10, 10, 20))
    assert ((prior.rho > 0) & (prior.rho < 1)).all()


def test_beta_zero_leaves_rho_untouched_and_frozen_rho_stays_half():
    X, psi, _ = _feats(n=64)
    y = torch.arange(64) % 3
    p0 = AFTPrior(20)
    train_student(mlp(8, 3, hidden=(6,), seed=0), X, y, psi, p0, beta=0.0, epochs=3, bs=16)
    assert torch.equal(p0.s.detach(), torch.zeros(20))
    p1 = AFTPrior(20)
    train_student(mlp(8, 3, hidden=(6,), seed=0), X, y, psi, p1, beta=1.0, epochs=3, bs=16)
    assert p1.s.detach().abs().sum() > 0
    p2 = AFTPrior(20, learn=False)
    train_student(mlp(8, 3, hidden=(6,), seed=0), X, y, psi, p2, beta=1.0, epochs=3, bs=16)
    assert torch.equal(p2.rho.detach(), torch.full((20,), 0.5))


def test_rho_switches_off_noise_columns():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(3, 2, generator=g) * 3
    y = torch.arange(300) % 3
    clean = c[y] + 0.3 * torch.randn(300, 2, generator=g)
    X = torch.cat([clean + torch.randn(300, 2, generator=g), torch.randn(300, 18, generator=g) * 2], 1)
    psi = torch.cat([clean, torch.randn(300, 30, generator=g) * 3], 1)
    prior = AFTPrior(32)
    train_student(mlp(20, 3, hidden=(16,), seed=0), X, y, psi, prior, beta=10.0, epochs=60, bs=64)
    rho = prior.rho.detach()
    assert rho[:2].min() > rho[2:].max()


def test_kd_prior_trains_its_map():
    phi, psi, _ = _feats()
    kd = KDPrior(8, 20)
    kd(phi, psi).backward()
    assert kd.map.weight.grad.abs().sum() > 0


# --- helpers --------------------------------------------------------------------------------------------------------
def test_split_pools_disjoint_and_classes():
    y = torch.arange(1000) % 10
    t, s = split_pools(y, 300, range(5, 10), range(5), seed=3)
    assert not set(t.tolist()) & set(s.tolist())
    assert (y[t] < 5).all() and (y[s] >= 5).all() and len(t) == 300 and len(s) == 500
    with pytest.raises(ValueError, match='teacher_pool=600'): split_pools(y, 600, range(10), range(5))


def test_inference_cost():
    assert inference_cost(mlp(784, 10, hidden=(64, 64)), torch.zeros(1, 784)) == \
        (784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10, 784 * 64 + 64 * 64 + 64 * 10)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten())
    assert inference_cost(conv, torch.zeros(1, 1, 5, 5)) == (4 * 9 + 4, 4 * 25 * 9)
    assert inference_cost(lambda x: x, torch.zeros(1, 3)) == (None, None)


# --- the experiment -------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny():
    return experiment('digits', **TINY)


def test_rows_schema_roles_and_curves(tiny):
    check_rows(tiny)
    assert tiny.meta['knob'] == 'beta'
    assert {r['method'] for r in tiny if r['role'] == 'retrain'} == {'stl'}
    assert {(r['method'], r['role']) for r in tiny} == {('teacher', 'setup'), ('teacher_features', 'setup'),
                                                        ('stl', 'retrain'), ('aft', 'adapt'), ('kd', 'baseline'),
                                                        ('probe', 'baseline')}
    for r in tiny:
        if r['role'] != 'setup':
            assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] == r['examples'] == 20 * 100
        for c in ('n_labels', 'student_params', 'student_macs', 'teacher_params', 'teacher_macs'):
            assert isinstance(r[c], int), c
    feat = tiny.where(method='teacher_features')[0]
    assert feat['state_bytes'] == 100 * 512 * 4 == feat['feature_bytes']
    aft = tiny.where(method='aft')[0]
    assert 0 < aft['rho_teacher'] < 1 and aft['rho_noise'] is None and len(aft['rho']) == 512


def test_same_seed_same_rows(tiny):
    assert Results(tiny.stable()) == Results(experiment('digits', **TINY).stable())
    other = experiment('digits', **(TINY | dict(seed=1)))
    assert other.where(method='stl')[0]['acc'] != tiny.where(method='stl')[0]['acc'] or \
        other.where(method='stl')[0]['curve_acc'] != tiny.where(method='stl')[0]['curve_acc']


def test_beta_sweep():
    res = experiment('digits', **(TINY | dict(beta=(0, 1, 10), methods=('stl', 'aft', 'kd'))))
    assert sorted(r['beta'] for r in res.where(method='aft')) == [1.0, 10.0]          # β = 0 is the STL row
    assert sorted(r['beta'] for r in res.where(method='kd')) == [1.0, 10.0]
    alone = experiment('digits', **(TINY | dict(beta=0, methods=('aft',))))
    row = alone.where(method='aft')[0]
    assert row['beta'] == 0.0 and row['rho_teacher'] == 0.5                          # no gradient reaches ρ


def test_noise_columns_and_user_teacher():
    d = load('digits')
    W = torch.randn(64, 40, generator=torch.Generator().manual_seed(0))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 40))
    res = experiment((d.X, d.y, d.X[:200], d.y[:200]), **(TINY | dict(teacher=teacher, noise_dims=30)))
    aft = res.where(method='aft')[0]
    assert len(aft['rho']) == 70 and aft['rho_noise'] is not None
    assert aft['teacher_params'] == 64 * 40 + 40 and aft['teacher_macs'] == 64 * 40
    assert not res.where(method='teacher')                                            # not trained here: no row
    fn = experiment((d.X, d.y, d.X[:200], d.y[:200]), **(TINY | dict(teacher=lambda x: x.flatten(1) @ W)))
    assert fn.where(method='aft')[0]['teacher_params'] is None


def _d():
    d = load('digits')
    return d.X, d.y


BAD = [
    (dict(beta=-1), ValueError, 'beta=-1'),
    (dict(beta=(1, float('nan'))), ValueError, 'beta=nan'),
    (dict(n_labels=5000), ValueError, 'n_labels=5000 is larger than the labelled pool'),
    (dict(n_labels=0), ValueError, 'n_labels=0'),
    (dict(methods=('aft', 'lora')), ValueError, "methods='lora'"),
    (dict(teacher='mpl'), ValueError, "teacher='mpl' is not known"),
    (dict(teacher=lambda x: x), ValueError, 'N×d features'),
    (dict(teacher=3), TypeError, 'teacher must be'),
    (dict(noise_dims=-3), ValueError, 'noise_dims=-3'),
    (dict(classes=[11]), ValueError, 'classes=[11]'),
    (dict(learn_rho='yes'), TypeError, 'learn_rho'),
    (dict(teacher_pool=10**6), ValueError, 'teacher_pool=1000000'),
    (dict(label_pool=10**6), ValueError, 'label_pool=1000000'),
    (dict(rho_lr=0), ValueError, 'rho_lr=0'),
    (dict(epochs=0), ValueError, 'epochs=0'),
    (dict(data='mismatch'), ValueError, 'must match'),
    (dict(data='nan'), ValueError, 'NaN or inf'),
    (dict(data='nonint'), ValueError, 'integer class labels'),
    (dict(data=(1, 2)), TypeError, 'data must be'),
]


@pytest.mark.parametrize('bad,err,msg', BAD, ids=[m for _, _, m in BAD])
def test_bad_input(bad, err, msg):
    X, y = _d()
    kw = TINY | bad
    data = kw.pop('data', 'digits')
    if data == 'mismatch': data = (X, y[:-1], X, y)
    elif data == 'nan':
        X = X.clone()
        X[3, 0, 0] = float('nan')
        data = (X, y, X, y)
    elif data == 'nonint': data = (X, y.float() + 0.5, X, y)
    with pytest.raises(err, match=msg.replace('[', r'\[').replace(']', r'\]').replace('(', r'\(')):
        experiment(data, **kw)


def test_torchvision_teacher_without_weights_raises_clearly():
    ckpt = Path(torch.hub.get_dir()) / 'checkpoints'
    if ckpt.is_dir() and any(ckpt.glob('resnet18*')): pytest.skip('resnet18 weights are cached here')
    with pytest.raises(RuntimeError, match='could not be loaded.*checkpoints'):
        experiment('digits', **(TINY | dict(teacher='resnet18')))


def test_unseen_tensors_aft_beats_stl_and_switches_off_noise(shared_data):
    "Fashion-MNIST, flattened, as tensors: AFT > STL at 500 labels, AFT >= KD, and ρ lower on noise columns."
    tr, te = load('fashion-mnist', 'train'), load('fashion-mnist', 'test')
    data = (tr.X[:10000].flatten(1), tr.y[:10000], te.X[:2000].flatten(1), te.y[:2000])
    res = experiment(data, beta=(10,), n_labels=500, noise_dims=512, methods=('stl', 'kd', 'aft'))
    acc = {r['method']: r['acc'] for r in res if r['role'] != 'setup'}
    aft = res.where(method='aft')[0]
    assert acc['aft'] > acc['stl'] + 0.01 and acc['aft'] >= acc['kd'] - 0.005, acc
    assert aft['rho_noise'] < aft['rho_teacher'] - 0.1, (aft['rho_teacher'], aft['rho_noise'])


def test_widget_reruns_for_a_new_beta_and_caches():
    import matplotlib
    matplotlib.use('Agg')
    from adaptbook.aft import widget
    ex = widget('digits', n_test=200, epochs=10, teacher_epochs=2)
    assert list(ex.controls)[0] == 'beta' and hasattr(ex.controls['beta'], 'options')
    png = ex.png
    ex.set(beta=1)
    assert ex.png != png and len(ex.cache) == 2
    ex.set(beta=10)
    assert ex.png == png
