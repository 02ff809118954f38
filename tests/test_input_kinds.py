"""Input kinds handled at the boundary, table-driven over every public entry point (issue #23).

Each kind of input a new user hands in (float64 NumPy arrays, float64 tensors, uint8 pixels, inputs that require
grad, int32/int16/NumPy labels, string labels, a task whose class has no test rows, single-class data) goes to every
chapter's `experiment()` and every public training helper. Each case either works, or raises `ValueError`/`TypeError`
naming the argument, quickly; the caller's tensors and arrays are never modified by the call. The conversions live
in one place, `core.as_inputs` (with `core.as_labels`), and the task-stream check in `core.check_task_stream`."""

import numpy as np
import pytest
import torch
from torch import nn

from adaptbook import aft, core, intro, kprior, kvb, piggyback, zapping
from conftest import no_training

# ---------------------------------------------------------------------------------------------------------- data

def _images(n=36, nt=18, k=3, seed=0):
    "(X_train, y_train, X_test, y_test): N×8×8 grey images in [0, 1], labels 0..k-1, every class in both splits."
    g = torch.Generator().manual_seed(seed)
    y, yt = torch.arange(n) % k, torch.arange(nt) % k
    X = (torch.rand(n, 8, 8, generator=g) + 0.3 * y[:, None, None]) / 1.6
    Xt = (torch.rand(nt, 8, 8, generator=g) + 0.3 * yt[:, None, None]) / 1.6
    return X, y, Xt, yt

PRETRAIN = _images(n=40, nt=20, k=4, seed=1)

# Every chapter's experiment, made tiny (a few dozen rows, one epoch or a few steps).
EXPERIMENTS = {
    'intro': lambda d: intro.experiment(d, chunks=2, epochs=1),
    'kprior': lambda d: kprior.experiment(d, memory=(0.5,), methods=('batch', 'kprior')),
    'zapping': lambda d: zapping.experiment(
        d, encoders='train', pretrain=PRETRAIN, pretrain_classes=2, pretrain_epochs=1, episodes=2, widths=(4,),
        hidden=8, pretraining=('iid',), zap_every=(0,), methods=('scratch', 'iid_head', 'lstsq'), shots=3,
        n_classes=3, lrs=(1e-3,), cache=False, iid_epochs=1, scratch_epochs=1),
    'piggyback': lambda d: piggyback.experiment(d, tasks=[[0, 1], [2]], n_labels=None, n_test=None, epochs=1,
                                                backbone=piggyback.build_model('mlp', (8, 8), 3), lr_head=(1e-2,),
                                                lr_classifier=(1e-2,), lr_finetune=(1e-3,), lr_scratch=(1e-3,)),
    'aft': lambda d: aft.experiment(d, beta=(1,), n_labels=10, teacher_pool=12, epochs=1, teacher_epochs=1,
                                    hidden=(8,), teacher_hidden=(8,)),
    'kvb': lambda d: kvb.experiment(d, keys=(4,), encoder='identity', codebooks=2, key_dim=2, epochs_per_task=1,
                                    tasks=[[0, 1], [2]], ref_iters=5),
}

def _numpy64(d): return tuple(t.double().numpy() if t.is_floating_point() else t.numpy() for t in d)

def _grad(d): return (d[0].clone().requires_grad_(), d[1], d[2].clone().requires_grad_(), d[3])

def _uint8(d): return ((d[0] * 255).to(torch.uint8), d[1], (d[2] * 255).to(torch.uint8), d[3])

def _no_test_rows(d):
    "Class 2 (the last task's class in every chapter's tiny setting) has no test rows."
    keep = d[3] != 2
    return d[0], d[1], d[2][keep], d[3][keep]

def _single(d): return d[0], torch.zeros_like(d[1]), d[2], torch.zeros_like(d[3])

OK = None
# kind -> (make data, expected: OK or {chapter or '*': (error type, text the message must contain)})
KINDS = {
    'float64 numpy': (_numpy64, OK),
    'float64 tensor': (lambda d: (d[0].double(), d[1], d[2].double(), d[3]), OK),
    'uint8 pixels': (_uint8, OK),
    'requires grad': (_grad, OK),
    'int32 labels': (lambda d: (d[0], d[1].int(), d[2], d[3].int()), OK),
    'numpy int16 labels': (lambda d: (d[0], d[1].numpy().astype(np.int16), d[2], d[3].numpy().astype(np.int16)), OK),
    'string labels': (lambda d: (d[0], np.array(['abc'[i] for i in d[1].tolist()]), d[2], d[3]),
                      {'*': (TypeError, 'y_train holds strings')}),
    'class without test rows': (_no_test_rows, {
        'intro': OK, 'kprior': OK,           # no task stream: the test set is scored as it is
        'zapping': (ValueError, 'class 2 with no rows in y_test'),
        'piggyback': (ValueError, 'tasks[1] has class 2 with no rows in y_test'),
        'aft': (ValueError, 'classes has class 2 with no rows in y_test'),
        'kvb': (ValueError, 'tasks[1] has class 2 with no rows in y_test')}),
    'single class': (_single, {'*': (ValueError, 'y_train holds 1 class')}),
}

def _copies(d): return [t.detach().clone() if isinstance(t, torch.Tensor) else np.copy(t) for t in d]

def _unchanged(before, after):
    for a, b in zip(before, after):
        if isinstance(b, torch.Tensor):
            assert a.dtype == b.dtype and torch.equal(a, b.detach()), 'a call modified the caller\'s tensor'
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b), 'a call modified the caller\'s array'


@pytest.mark.parametrize('chapter', list(EXPERIMENTS))
@pytest.mark.parametrize('kind', list(KINDS))
def test_experiment_input_kinds(chapter, kind):
    make, expect = KINDS[kind]
    d = make(_images())
    before = _copies(d)
    want = expect if expect is OK else expect.get(chapter, expect.get('*'))
    if want is OK:
        res = EXPERIMENTS[chapter](d)
        assert len(res.rows) > 0
    else:
        err, text = want
        with no_training(), pytest.raises(err) as e: EXPERIMENTS[chapter](d)
        assert text in str(e.value), f'{chapter}/{kind}: {e.value}'
    _unchanged(before, d)


def test_every_chapter_is_in_the_table():
    assert set(EXPERIMENTS) == set(core.CHAPTERS)

# ------------------------------------------------------------------------------------------- training helpers

def _feat(n=30, d=6, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    return torch.rand(n, d, generator=g) + 0.2 * y[:, None], y

def _img(n=30, k=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    return torch.rand(n, 1, 28, 28, generator=g), y

def _net(): return zapping.convnet(3, widths=(4,), hidden=8)

def _pb():
    pb = piggyback.Piggyback(nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)))
    pb.add_task('t', 3)
    return pb

def _kvbm(): return kvb.KeyValueBottleneck(6, codebooks=2, keys=4, key_dim=3, value_dim=3)

def _student(): return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))

# name -> (data maker, call(X, y), the label argument's name or None for a helper without labels)
HELPERS = {
    'core.fit': (_feat, lambda X, y: core.fit(nn.Linear(6, 3), X, y, epochs=1, verbose=False), 'y'),
    'aft.train_student': (_feat, lambda X, y: aft.train_student(_student(), X, y, epochs=1), 'y'),
    'aft.train_student (prior, psi)': (_feat, lambda X, y: aft.train_student(
        _student(), X, y, X, aft.AFTPrior(6), beta=1.0, epochs=1), 'y'),
    'aft.train_mlp_teacher': (_feat, lambda X, y: aft.train_mlp_teacher(X, y, hidden=(8,), epochs=1), 'y'),
    'kvb.train_values': (_feat, lambda X, y: kvb.train_values(_kvbm(), X, y, epochs=1), 'y'),
    'kvb.init_keys': (_feat, lambda X, y: kvb.init_keys(_kvbm(), X, epochs=1, bs=8), None),
    'kvb.converge': (_feat, lambda X, y: kvb.converge(nn.Linear(6, 3), X, y, max_iter=5), 'y'),
    'kvb.NearestClassMean.update': (_feat, lambda X, y: kvb.NearestClassMean(6, 3).update(X, y), 'y'),
    'zapping.pretrain_iid': (_img, lambda X, y: zapping.pretrain_iid(_net(), X, y, epochs=2, zap_every=1), 'y'),
    'zapping.pretrain_asb': (_img, lambda X, y: zapping.pretrain_asb(_net(), X, y, episodes=2, shots=2, memory=4), 'y'),
    'zapping.train_head': (_feat, lambda X, y: zapping.train_head(X, y, X, y, order='iid', epochs=1), 'ytr'),
    'zapping.train_all': (_img, lambda X, y: zapping.train_all(_net(), X, y, X, y, order='iid', epochs=1), 'ytr'),
    'zapping.lstsq_readout': (_feat, lambda X, y: zapping.lstsq_readout(X, y), 'ytr'),
    'piggyback.train_task': (_feat, lambda X, y: piggyback.train_task(_pb(), X, y, epochs=1), 'y'),
}

HELPER_KINDS = {
    'float64 numpy': lambda X, y: (X.double().numpy(), y.numpy()),
    'float64 tensor': lambda X, y: (X.double(), y),
    'uint8 pixels': lambda X, y: ((X / X.max() * 255).to(torch.uint8), y),
    'requires grad': lambda X, y: (X.clone().requires_grad_(), y),
    'int32 labels': lambda X, y: (X, y.int()),
    'numpy int32 labels': lambda X, y: (X, y.numpy().astype(np.int32)),
    'uint8 labels': lambda X, y: (X, y.to(torch.uint8)),
    'string labels': lambda X, y: (X, np.array(['abc'[i] for i in y.tolist()])),
}


@pytest.mark.parametrize('helper', list(HELPERS))
@pytest.mark.parametrize('kind', list(HELPER_KINDS))
def test_training_helper_input_kinds(helper, kind):
    make, call, yname = HELPERS[helper]
    if yname is None and 'labels' in kind: pytest.skip(f'{helper} takes no labels')
    X, y = HELPER_KINDS[kind](*make())
    before = _copies((X, y))
    if kind == 'string labels':
        with no_training(), pytest.raises(TypeError) as e: call(X, y)
        assert f'{yname} holds strings' in str(e.value), f'{helper}: {e.value}'
    else:
        call(X, y)                            # works: converted once, by core.as_inputs
    _unchanged(before, (X, y))
    if isinstance(X, torch.Tensor) and kind == 'requires grad': assert X.grad is None


# ------------------------------------------------------------------------------------------ the one place

def test_as_inputs_is_the_one_conversion():
    X, y = core.as_inputs(np.arange(12, dtype=np.float64).reshape(4, 3), np.array([0, 1, 1, 0], dtype=np.int32))
    assert X.dtype == torch.float32 and y.dtype == torch.long
    assert core.as_inputs(torch.full((2, 2), 255, dtype=torch.uint8))[0].eq(1).all()
    assert core.as_inputs(torch.ones(2, 2), dtype=torch.float64)[0].dtype == torch.float64
    with pytest.raises(TypeError, match='labels holds strings'): core.as_labels(['a', 'b'], 'labels')
    with pytest.raises(TypeError, match='X must be a torch.Tensor or NumPy array'): core.as_inputs('pixels')
    with pytest.raises(TypeError, match='complex'): core.as_inputs(torch.ones(2, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match='integer class labels'): core.as_labels(torch.tensor([0.5, 1.0]))
    assert core.as_labels(torch.tensor([0.0, 2.0])).tolist() == [0, 2]


def test_check_task_stream():
    ytr, yte = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2])
    assert core.check_task_stream([[0, 1], [2]], ytr, yte) == [[0, 1], [2]]
    cases = [
        (([[0, 1], [3]], ytr, yte), 'tasks[1] has class 3 with no rows in y_test'),
        (([[0, 1], [4]], ytr, yte), 'tasks[1] has class 4 with no rows in y_train'),
        (({'base_classes': [0], 'new_classes': [3]}, ytr, yte), 'new_classes has class 3 with no rows in y_test'),
        (([[1]], ytr, yte), 'a single class'),
        (([[0], []], ytr, yte), 'tasks[1] has no classes'),
        (([], ytr, yte), 'is empty'),
    ]
    for args, text in cases:
        with pytest.raises(ValueError) as e: core.check_task_stream(*args)
        assert text in str(e.value), str(e.value)


def test_a_teacher_returning_numpy_works_and_other_outputs_are_named():
    "An AFT teacher (any encoder) may return NumPy; a list or strings are refused naming the encoder's output."
    import numpy as np
    import pytest
    import torch
    from adaptbook.models import features
    X = torch.randn(10, 4)
    Z = features(lambda x: x.numpy() * 2, X)
    assert Z.dtype == torch.float32 and torch.allclose(Z, X * 2)
    with pytest.raises(TypeError, match="the encoder's output for batch 0"):
        features(lambda x: x.tolist(), X)
    with pytest.raises(TypeError, match="encoder's output"):
        features(lambda x: np.array([['a'] * 4] * len(x)), X)


def test_a_damaged_feature_cache_is_computed_again(tmp_path, monkeypatch):
    import torch
    from adaptbook import models
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    X, key = torch.randn(6, 3), 'test-damaged-cache'
    Z = models.features(lambda x: x + 1, X, key=key)
    models._FEATURES.clear()
    (f,) = (tmp_path / 'features').glob('*.pt')
    f.write_bytes(f.read_bytes()[:20])                     # truncated
    assert torch.equal(models.features(lambda x: x + 1, X, key=key), Z)
    models._FEATURES.clear()
    assert torch.equal(models.features(lambda x: x - 5, X, key=key), Z)   # the rewritten file is whole and read back


def test_an_enormous_beta_warns_and_a_non_finite_one_is_refused():
    import math
    import pytest
    import torch
    from adaptbook import aft
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    X = torch.randn(120, 6, generator=g) + y[:, None]
    kw = dict(n_labels=30, teacher_pool=40, epochs=1, teacher=lambda x: x * 2, methods=('aft',))
    with pytest.warns(UserWarning, match=r"beta=1e\+30 is far above the paper's range"):
        aft.experiment((X, y, X, y), beta=(1e30,), **kw)
    for bad in (math.inf, math.nan, -1):
        with pytest.raises(ValueError, match='beta='):
            aft.experiment((X, y, X, y), beta=(bad,), **kw)


def test_a_zap_every_that_never_zaps_is_refused():
    "zap_every >= the epochs of i.i.d. pre-training never zaps: refused at the boundary, not labelled 'adapt'."
    import pytest
    import torch
    from adaptbook import zapping
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    X = torch.rand(40, 1, 28, 28, generator=g)
    with pytest.raises(ValueError, match='zap_every=3 with epochs=3 never zaps'):
        zapping.pretrain_iid(zapping.convnet(4), X, y, epochs=3, zap_every=3)
    zapping.pretrain_iid(zapping.convnet(4), X, y, epochs=3, zap_every=2)       # zaps once, at epoch 2
    with pytest.raises(ValueError, match='zap_every=50 with pretrain_epochs=2 never zaps'):
        zapping.experiment((X, y, X, y), zap_every=(0, 50), pretraining=('iid',), encoders='train', pretrain_epochs=2)
