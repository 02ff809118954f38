"""Bad inputs never hang and never fail silently: one table of bad inputs per public `experiment()`, training function
and data loader, each with the error it must raise (the argument named, before any training). Also the four
reproducers of the bad-input issue, dtype/device following the model, bounded solvers, the thread-count promise and
property-based tests of the pure functions."""
import json, math
import numpy as np
import pytest
import torch
from torch import nn
from hypothesis import given, settings, strategies as st
import hypothesis.extra.numpy as hnp

from adaptbook import cli, core, data, kprior, kprior_method, kvb, piggyback
from conftest import no_training
from adaptbook.core import SolverError

EXPS = cli.load_chapters()

def _good(n=200, d=64, classes=10, seed=0):
    "A valid (X_train, y_train, X_test, y_test) of N×d features and labels 0..classes-1, every class present."
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g), torch.arange(n) % classes,
            torch.randn(n // 2, d, generator=g), torch.arange(n // 2) % classes)

def _nan(t):
    X = t[0].clone()
    X[7, 3] = float('nan')
    return (X, *t[1:])

def _with(t, i, v):
    t = list(t)
    t[i] = v
    return tuple(t)

# Bad data: every experiment goes through `data.resolve`, so each row must raise the same clear error everywhere.
BAD_DATA = [
    ('unknown dataset name', lambda: 'no-such-set', ValueError, "no-such-set"),
    ('a tuple of three', lambda: _good()[:3], TypeError, 'of length 3'),
    ('NaN in X_train', lambda: _nan(_good()), ValueError, 'X_train has 1 row(s) with NaN or inf values (the first is row 7)'),
    ('inf in X_test', lambda: _with(_good(), 2, torch.full((100, 64), float('inf'))), ValueError, 'X_test has 100 row(s) with NaN'),
    ('X/y lengths differ', lambda: _with(_good(), 1, torch.arange(150) % 10), ValueError, 'X_train has 200 rows but y_train has 150'),
    ('negative label', lambda: _with(_good(), 1, torch.arange(200) % 10 - 1), ValueError, 'labels >= 0'),
    ('non-integer labels', lambda: _with(_good(), 1, torch.rand(200)), ValueError, 'integer class labels'),
    ('2-D labels', lambda: _with(_good(), 1, torch.zeros(200, 2, dtype=torch.long)), ValueError, 'must be 1-D'),
    ('train/test shapes differ', lambda: _with(_good(), 2, torch.randn(100, 32)), ValueError, 'X_train rows have shape (64,) but X_test rows (32,)'),
    ('empty X_train', lambda: (torch.zeros(0, 64), torch.zeros(0, dtype=torch.long), *_good()[2:]), ValueError, 'X_train is empty'),
    ('a string for X', lambda: _with(_good(), 0, 'pixels'), TypeError, 'X_train must be a tensor'),
]

# Per-chapter bad knobs and options: (chapter, kwargs, error, text the message must contain).
BAD_ARGS = [
    ('intro', dict(chunks=0), ValueError, 'chunks=0'),
    ('intro', dict(methods=('nope',)), ValueError, "'nope'"),
    ('kprior', dict(memory=(0.0,)), ValueError, 'memory fraction 0.0 must be a number in (0, 1]'),
    ('kprior', dict(memory=(1.5,)), ValueError, 'memory fraction 1.5 must be'),
    ('kprior', dict(memory=()), ValueError, 'memory=() is empty'),
    ('kprior', dict(task='shrink'), ValueError, "task='shrink'"),
    ('kprior', dict(methods=('kprior', 'magic')), ValueError, "'magic'"),
    ('kprior', dict(delta=-1.0), ValueError, 'delta'),
    ('kprior', dict(task='remove', remove=5000), ValueError, 'remove=5000'),
    ('piggyback', dict(thresholds=(0.0,)), ValueError, 'threshold=0.0'),
    ('piggyback', dict(thresholds=(5e-3, 2e-2)), ValueError, "below the scores' starting value"),
    ('piggyback', dict(tasks=[[0, 1], [1, 2]]), ValueError, 'class 1 is in tasks[0] and tasks[1]'),
    ('piggyback', dict(tasks=[[0, 1], [11, 12]]), ValueError, '11'),
    ('piggyback', dict(n_labels=10 ** 6), ValueError, 'n_labels=1000000'),
    ('piggyback', dict(kind='septenary'), ValueError, "kind='septenary'"),
    ('kvb', dict(keys=(0,)), ValueError, 'keys=0'),
    ('kvb', dict(tasks=[[0, 1], [1, 2]]), ValueError, '1'),
    ('kvb', dict(tasks=[[0, 1], [42]]), ValueError, '42'),
    ('kvb', dict(encoder='clip'), ValueError, "encoder='clip'"),
    ('kvb', dict(methods=('kvb', 'oracle')), ValueError, "'oracle'"),
    ('zapping', dict(zap_every=(-1,)), ValueError, 'zap_every=-1'),
    ('zapping', dict(pretraining=('maml',)), ValueError, "'maml'"),
    ('zapping', dict(pretrain='nope'), ValueError, "nope"),
    ('zapping', dict(_data=lambda: tuple(t.view(-1, 8, 8) if t.ndim == 2 else t for t in _good()), shots=10 ** 4,
                     pretrain='digits'), ValueError, 'shots=10000'),
    ('zapping', dict(), ValueError, 'X_train has shape (200, 64); give grey images'),
    ('aft', dict(beta=(-1.0,)), ValueError, 'beta=-1.0'),
    ('aft', dict(n_labels=10 ** 6), ValueError, 'n_labels'),
    ('aft', dict(methods=('aft', 'dino')), ValueError, "'dino'"),
    ('aft', dict(teacher='nope'), ValueError, "teacher='nope'"),
    ('aft', dict(teacher=lambda X: X.sum(1), n_labels=50), ValueError, 'must be N×d features; got shape (50,)'),
]

CHAPTERS = [m for m in ('intro', 'kprior', 'piggyback', 'kvb', 'aft', 'zapping') if m in EXPS]

@pytest.mark.parametrize('chapter', CHAPTERS)
@pytest.mark.parametrize('what,make,err,text', BAD_DATA, ids=[r[0] for r in BAD_DATA])
def test_bad_data_raises_before_training(chapter, what, make, err, text):
    with no_training(), pytest.raises(err, match=None) as e: EXPS[chapter]['experiment'](make())
    assert text in str(e.value), f'{chapter}, {what}: {e.value}'

@pytest.mark.parametrize('chapter,kw,err,text', BAD_ARGS, ids=[f'{r[0]}-{(list(r[1]) or ["data"])[-1]}' for r in BAD_ARGS])
def test_bad_arguments_raise_clearly(chapter, kw, err, text):
    kw = dict(kw)
    data = kw.pop('_data', _good)()
    with no_training(), pytest.raises(err) as e: EXPS[chapter]['experiment'](data, **kw)
    assert text in str(e.value), f'{chapter} {kw}: {e.value}'

# Public training functions and loaders.
def _tiny_pb():
    return piggyback.Piggyback(nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)))

def _tiny_kvb():
    return kvb.KeyValueBottleneck(6, codebooks=2, keys=4, key_dim=3, value_dim=3)

X6, y3 = torch.randn(30, 6), torch.arange(30) % 3
XNAN = X6.clone()
XNAN[4, 0] = float('nan')
BAD_TRAIN = [
    ('fit NaN', lambda: core.fit(nn.Linear(6, 3), XNAN, y3, epochs=1, verbose=False), ValueError, 'row 4'),
    ('fit labels', lambda: core.fit(nn.Linear(6, 3), X6, y3 + 5, epochs=1, verbose=False), ValueError, 'the label 7, but the model outputs 3 classes'),
    ('fit lengths', lambda: core.fit(nn.Linear(6, 3), X6, y3[:10], epochs=1, verbose=False), ValueError, 'rows'),
    ('fit epochs', lambda: core.fit(nn.Linear(6, 3), X6, y3, epochs=0, verbose=False), ValueError, 'epochs=0'),
    ('newton NaN', lambda: kprior.newton(kprior.glm(6, 3), [(XNAN.double(), y3, 1)], 1.0), ValueError, 'NaN'),
    ('newton delta', lambda: kprior.newton(kprior.glm(6, 3), [(X6.double(), y3, 1)], 0.0), ValueError, 'delta=0.0'),
    ('lbfgs NaN', lambda: kprior.lbfgs(kprior.glm(6, 3), [(XNAN, y3, 1)], 1.0), ValueError, 'NaN'),
    ('select_memory size', lambda: kprior.select_memory(torch.full((30, 3), 1 / 3), y3, 31), ValueError, 'size=31'),
    ('train_task base', lambda: piggyback.train_task(_tiny_pb(), X6, y3, epochs=1), ValueError, "'base'"),
    ('add_task threshold', lambda: _tiny_pb().add_task('t', 2, threshold=0.5), ValueError, '100 % off'),
    ('Piggyback init', lambda: piggyback.Piggyback(nn.Sequential(nn.Linear(6, 3)), init=-1.0), ValueError, 'init=-1.0'),
    ('init_keys NaN', lambda: kvb.init_keys(_tiny_kvb(), XNAN), ValueError, 'Z has 1 row(s) with NaN'),
    ('train_values labels', lambda: kvb.train_values(_tiny_kvb(), X6, y3 + 1, epochs=1), ValueError, 'label 3'),
    ('train_values NaN', lambda: kvb.train_values(_tiny_kvb(), XNAN, y3, epochs=1), ValueError, 'NaN'),
    ('load unknown', lambda: data.load('nope'), ValueError, "'nope'"),
    ('load split', lambda: data.load('digits', split='validation'), ValueError, 'validation'),
    ('subsample too many', lambda: data.subsample(X6, y3, 31), ValueError, '31'),
    ('select_classes absent', lambda: data.select_classes(X6, y3, [0, 7]), ValueError, '7'),
    ('check_tasks overlap', lambda: data.check_tasks([[0, 1], [1]]), ValueError, '1'),
]

@pytest.mark.parametrize('what,call,err,text', BAD_TRAIN, ids=[r[0] for r in BAD_TRAIN])
def test_bad_inputs_to_training_functions(what, call, err, text):
    with pytest.raises(err) as e: call()
    assert text in str(e.value), f'{what}: {e.value}'

def test_bad_input_count():
    "The note reports how many bad inputs the tables try; keep the tables from shrinking unnoticed."
    assert len(BAD_DATA) * len(CHAPTERS) + len(BAD_ARGS) + len(BAD_TRAIN) >= 80

# The four reproducers of the issue.
def test_nan_does_not_hang_any_chapter():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 3, generator=g)
    y = (X[:, 0] > 0).long()
    X[5, 1] = float('nan')
    calls = [lambda: kprior.experiment((X, y, X[:20], y[:20]), task='add', memory=(0.5,), methods=('batch',)),
             lambda: kvb.experiment((X, y, X[:20], y[:20]), encoder='identity'),
             lambda: kvb.experiment((X, y, X[:20], y[:20]), encoder='pca'),
             lambda: piggyback.experiment((X, y, X[:20], y[:20]), tasks=[[0], [1]])]
    for call in calls:
        with no_training(), pytest.raises(ValueError, match=r'X_train has 1 row\(s\) with NaN or inf values \(the first is row 5\)'):
            call()

def test_threshold_at_or_above_init_is_refused():
    for thr in (piggyback.INIT, 2e-2):
        with pytest.raises(ValueError, match='100 % off'): piggyback.experiment('digits', thresholds=(5e-3, thr))

def _pb_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

def test_piggyback_new_task_follows_the_models_dtype():
    pb = piggyback.Piggyback(_pb_net()).double()
    pb.add_task('t', 2)
    assert pb.heads['t'].weight.dtype == torch.float64
    assert all(p.scores['t'].dtype == torch.float64 for p in pb.parametrizations().values())
    out = pb.eval()(torch.randn(4, 6, dtype=torch.float64))
    assert out.dtype == torch.float64 and out.shape == (4, 2)
    piggyback.train_task(pb, torch.randn(20, 6, dtype=torch.float64), torch.arange(20) % 2, epochs=1)

def test_piggyback_new_task_follows_the_models_device():
    pb = piggyback.Piggyback(_pb_net()).to('meta')
    pb.add_task('t', 2)
    assert pb.heads['t'].weight.device.type == 'meta'
    assert all(p.scores['t'].device.type == 'meta' for p in pb.parametrizations().values())
    assert pb(torch.randn(4, 6, device='meta')).shape == (4, 2)

def test_kvb_follows_the_models_dtype():
    m = _tiny_kvb().double()
    Z = torch.randn(40, 6, dtype=torch.float64)
    kvb.init_keys(m, Z, epochs=1, bs=8)
    assert m.keys.dtype == torch.float64
    kvb.train_values(m, Z, torch.arange(40) % 3, epochs=1)
    assert m.values.dtype == torch.float64 and kvb.kvb_logits(m, Z).shape == (40, 3)

def test_kprior_remove_batch_mem_size_is_what_it_retrains_on():
    res = kprior.experiment('digits', task='remove', memory=(0.5,), methods=('batch', 'kprior'), remove=0.1)
    n_old = len(data.resolve('digits')[1])
    rows = {r['method']: r for r in res}
    n_removed = round(0.1 * n_old)
    assert rows['batch']['mem_size'] == n_old - n_removed
    assert rows['kprior']['mem_size'] == kprior.memory_size(0.5, n_old - n_removed) + n_removed

# Bounded solvers.
def test_newton_raises_when_it_runs_out_of_iterations():
    X = torch.randn(50, 4, dtype=torch.float64)
    with pytest.raises(SolverError, match='newton did not converge in max_iter=1'):
        kprior.newton(kprior.glm(4, 2).double(), [(X, (X[:, 0] > 0).long(), 1)], 1.0, max_iter=1)

def test_newton_damping_is_bounded():
    with pytest.raises(SolverError, match='NaN or inf'):
        kprior_method._solve_pd(torch.full((3, 3), float('nan'), dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64))
    H = -torch.eye(3, dtype=torch.float64)                       # never positive definite within 1e-3 × |H|
    with pytest.raises(SolverError, match='not positive definite even with damping'):
        kprior_method._solve_pd(H, torch.ones(3, 1, dtype=torch.float64), max_damping=1e-3)

# Threads: one place, and what the determinism promise covers.
def test_experiments_restore_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        orig = kprior.solve
        kprior.solve = lambda *a, **k: (seen.append(torch.get_num_threads()), orig(*a, **k))[1]
        try: kprior.experiment('digits', memory=(0.5,), methods=('kprior',))
        finally: kprior.solve = orig
        assert seen and set(seen) == {core.default_threads()}
        assert torch.get_num_threads() == 2
    finally: torch.set_num_threads(before)

def test_threads_env(monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_THREADS', '3')
    assert core.default_threads() == 3
    monkeypatch.setenv('ADAPTBOOK_THREADS', 'many')
    with pytest.raises(ValueError, match="ADAPTBOOK_THREADS='many'"): core.default_threads()

def test_same_seed_same_threads_same_rows():
    kw = dict(keys=(16,), methods=('kvb', 'linear'), codebooks=8, pca_dim=16, key_epochs=1, epochs_per_task=2,
              n_train=400, n_test=200)
    a, b = (json.dumps(kvb.experiment('digits', **kw).stable()) for _ in range(2))   # NaN == NaN in JSON text
    assert a == b

def test_identical_work_reports_identical_or_absent_peak_mem():
    def work():
        led = core.Ledger('cpu')
        with led: core.fit(nn.Linear(6, 3), X6, y3, epochs=2, verbose=False, ledger=led)
        return led.peak_mem
    a, b = work(), work()
    assert a == b and (a is None or a >= 0)
    res = kvb.experiment('digits', keys=(16,), methods=('kvb',), codebooks=8, pca_dim=16, key_epochs=1,
                         epochs_per_task=1, n_train=300, n_test=100)
    assert all(r['peak_mem'] is None for r in res), 'on the CPU peak memory cannot be measured: it must be absent'
    assert 'peak_mem' not in res.table().splitlines()[0]

# Column meanings.
def test_every_column_is_documented_once():
    assert all(c in core.COLUMNS for c in core.ROW_SCHEMA)
    assert {'mem_size', '<knob>'} <= set(core.COLUMNS)

# Property-based tests of the pure functions.
@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=6).map(lambda s: (s[0], s[0])),
                  elements=st.floats(0, 1)))
def test_stream_metrics_properties(R):
    aa, f, bwt = core.average_accuracy(R), core.forgetting(R), core.backward_transfer(R)
    assert 0 <= aa <= 1 and -1 <= f <= 1 and -1 <= bwt <= 1
    assert math.isclose(aa, R[-1].mean())
    assert f >= -bwt - 1e-12                 # the best earlier accuracy is at least the one just after training
    if len(R) == 1: assert f == 0 and bwt == 0

@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(2, 40), st.data())
def test_select_memory_sizes_and_class_coverage(C, N, draw):
    y = torch.tensor(draw.draw(st.lists(st.integers(0, C - 1), min_size=N, max_size=N)))
    P = torch.softmax(torch.randn(N, C, generator=torch.Generator().manual_seed(N)), 1)
    size = draw.draw(st.integers(1, N))
    for rule in ('top', 'random'):
        idx = kprior.select_memory(P, y, size, rule)
        assert len(idx) == size and len(set(idx.tolist())) == size and 0 <= int(idx.min()) and int(idx.max()) < N
    present, top = set(y.tolist()), kprior.select_memory(P, y, size, 'top')
    if size >= len(present):                  # class-balanced: every class present gets a place
        assert set(y[top].tolist()) == present
    counts = torch.bincount(y[top], minlength=C)
    full = torch.bincount(y, minlength=C)     # no class gets two more places than another unless it ran out
    assert counts.max() - counts[counts < full].min() <= 1 if (counts < full).any() else True

@settings(max_examples=60, deadline=None)
@given(st.lists(hnp.array_shapes(min_dims=1, max_dims=3, max_side=7), min_size=1, max_size=4), st.integers(0, 2 ** 31))
def test_mask_packing_round_trip(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    masks = {f'layer{i}': torch.rand(s, generator=g) < 0.5 for i, s in enumerate(shapes)}
    blob = piggyback.pack_masks(masks)
    assert len(blob) == math.ceil(sum(m.numel() for m in masks.values()) / 8)
    back = piggyback.unpack_masks(blob, {k: tuple(m.shape) for k, m in masks.items()})
    assert back.keys() == masks.keys() and all(torch.equal(back[k], masks[k]) for k in masks)

@settings(max_examples=40, deadline=None)
@given(st.integers(3, 12), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 31), st.floats(0.1, 10))
def test_aft_regularizer_invariances(B, dphi, dpsi, seed, scale):
    from adaptbook import aft
    g = torch.Generator().manual_seed(seed)
    phi, psi = torch.randn(B, dphi, generator=g, dtype=torch.float64), torch.randn(B, dpsi, generator=g, dtype=torch.float64)
    r = aft.aft_regularizer(phi, psi)
    assert 0 <= float(r) <= 2 + 1e-6                      # cosine kernels differ by at most 2 per entry
    assert float(aft.aft_regularizer(phi, phi)) < 1e-3       # zero (up to the 1e-8 inside the root) when φ = ψ
    shift = torch.randn(1, dpsi, generator=g, dtype=torch.float64) * 5
    assert torch.allclose(aft.aft_regularizer(phi, psi + shift), r, atol=1e-9)     # per-dimension shifts: centred away
    assert torch.allclose(aft.aft_regularizer(phi * scale, psi), r, atol=1e-9)     # a global scale: normalised away
    rho = torch.rand(dpsi, generator=g, dtype=torch.float64) + 0.01
    assert torch.allclose(aft.aft_regularizer(phi, psi, rho), aft.aft_regularizer(phi, psi * rho), atol=1e-12)
