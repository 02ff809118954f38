"K-priors: the exact-recovery identities, memory selection, determinism, bad input, and runs on unusual tensors."
import math

import pytest
import torch
from torch.nn.utils import vector_to_parameters

from adaptbook import kprior as K


def blobs(n=400, d=7, c=4, n_test=200, seed=0, shape=None):
    "Gaussian class blobs (overlapping, so the problem is not separable): (X_train, y_train, X_test, y_test)."
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(c, d, generator=g) * 1.2
    def draw(m):
        y = torch.randint(0, c, (m,), generator=g)
        X = centres[y] + torch.randn(m, d, generator=g)
        return (X if shape is None else X.view(m, *shape)), y
    return (*draw(n), *draw(n_test))


def row(res, method, memory=None):
    rows = [r for r in res if r['method'] == method and (memory is None or r['memory'] == memory)]
    assert len(rows) == 1, (method, memory, len(rows))
    return rows[0]


# --- the identities ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('task,opts', [('add', {'new_frac': 0.2}), ('remove', {'remove': 25, 'remove_by': 'top'}),
                                       ('remove', {'remove': 0.1, 'remove_by': 'random'}),
                                       ('change_reg', {'delta_new': 0.7})])
def test_full_memory_recovers_batch_newton(task, opts):
    res = K.experiment(blobs(), task=task, memory=(1.0, 0.1), delta=2.0, **opts)
    assert row(res, 'batch')['weight_err'] == 0
    assert row(res, 'kprior', 1.0)['weight_err'] <= 1e-6
    assert row(res, 'kprior', 1.0)['acc'] == row(res, 'batch')['acc']
    # with 10 % memory it is no longer exact; for add/remove K-prior beats Replay in weight space (for change_reg
    # it drifts toward (delta/delta_new) w_*: trap #1 of the reference, so no such claim there)
    k, r = row(res, 'kprior', 0.1)['weight_err'], row(res, 'replay', 0.1)['weight_err']
    assert k > 1e-6
    if task != 'change_reg': assert k < r


@pytest.mark.parametrize('solver', ['newton', 'lbfgs'])
@pytest.mark.parametrize('task,opts', [('add', {'new_classes': [8, 9]}), ('remove', {'remove': 30}),
                                       ('change_reg', {'delta_new': 10.0})])
def test_full_memory_recovers_batch_10_classes(task, opts, solver):
    # 10 classes and images of shape 3x4: flattened to 12 features; both exact solvers
    data = blobs(n=500, d=12, c=10, shape=(3, 4), seed=3)
    res = K.experiment(data, task=task, memory=(1.0,), methods=('kprior', 'batch'), solver=solver, delta=1.0, **opts)
    assert row(res, 'kprior', 1.0)['weight_err'] <= 1e-6
    assert res.meta['n_classes'] == 10 and res.meta['n_features'] == 12


def test_gradient_identity_at_any_w():
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(150, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (150,), generator=g)
    delta = 3.0
    old = K.newton(K.glm(6, 3), [(X, y, 1)], delta)
    P = K.soft_labels(old, X)
    for trial in range(3):
        m = K.glm(6, 3)
        vector_to_parameters(torch.randn(21, generator=g, dtype=torch.float64) * (trial + 1), m.parameters())
        gK = torch.autograd.grad(K.kprior_loss(m, X, P, old, delta), list(m.parameters()))
        gB = torch.autograd.grad(K.objective(m, [(X, y, 1)], delta), list(m.parameters()))
        gK, gB = torch.cat([t.flatten() for t in gK]), torch.cat([t.flatten() for t in gB])
        assert ((gK - gB).norm() / gB.norm()).item() <= 1e-8
    # with part of the memory the gradients differ: the test above can fail
    m = K.glm(6, 3); vector_to_parameters(torch.randn(21, generator=g, dtype=torch.float64), m.parameters())
    gK = torch.autograd.grad(K.kprior_loss(m, X[:50], P[:50], old, delta), list(m.parameters()))
    gB = torch.autograd.grad(K.objective(m, [(X, y, 1)], delta), list(m.parameters()))
    gK, gB = torch.cat([t.flatten() for t in gK]), torch.cat([t.flatten() for t in gB])
    assert ((gK - gB).norm() / gB.norm()).item() > 1e-3


def test_change_reg_anchor_uses_old_delta():
    # the weight term is delta_new/2 ||w||^2 - delta_old w*^T w (+ const): gradient delta_new w - delta_old w*
    m = K.glm(3, 2); w_old = torch.randn(8, dtype=torch.float64)
    vector_to_parameters(torch.randn(8, dtype=torch.float64), m.parameters())
    X = torch.zeros(0, 3, dtype=torch.float64); P = torch.zeros(0, 2, dtype=torch.float64)
    grad = torch.autograd.grad(K.kprior_loss(m, X, P, w_old, 50.0, delta_new=5.0), list(m.parameters()))
    grad = torch.cat([t.flatten() for t in grad])
    torch.testing.assert_close(grad, 5.0 * K.flat(m) - 50.0 * w_old)


# --- memory selection ----------------------------------------------------------------------------------------------

def test_memory_fills_up_to_all_old_data_with_unbalanced_classes():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(300, generator=g) < 0.2).long()          # 20 % positives
    P = torch.softmax(torch.randn(300, 2, generator=g), 1)
    assert K.select_memory(P, y, 300).tolist() == list(range(300))
    m = K.select_memory(P, y, 40)
    assert len(m) == 40 and y[m].sum() == 20                 # balanced while both classes have points
    n_pos = int(y.sum())
    m = K.select_memory(P, y, 2 * n_pos + 10)
    assert y[m].sum() == n_pos                               # the small class is exhausted, the other fills up
    s = K.hprime(P)
    top0 = m[y[m] == 0]; rest0 = torch.tensor([i for i in range(300) if y[i] == 0 and i not in set(m.tolist())])
    assert s[top0].min() >= s[rest0].max()                   # within a class: the largest h'(f)


def test_memory_sizes():
    assert K.memory_size(1.0, 145) == 145 and K.memory_size(0.02, 145) == 3 and K.memory_size(1e-6, 10) == 1


# --- experiment: rows, determinism, shapes ------------------------------------------------------------------------

def test_rows_have_the_promised_fields():
    res = K.experiment(blobs(), task='add', memory=(0.5,))
    for r in res:
        for k in ('method', 'memory', 'acc', 'nll', 'weight_err', 'examples', 'seconds', 'state_bytes'):
            assert k in r
    assert row(res, 'kprior', 0.5)['examples'] < row(res, 'batch')['examples']
    assert row(res, 'kprior', 0.5)['state_bytes'] < row(res, 'batch')['state_bytes']
    # bytes kept besides the deployed network: w* is that network, so doing nothing keeps nothing
    assert row(res, 'wstar')['state_bytes'] == 0 and row(res, 'batch_warm')['state_bytes'] == row(res, 'batch')['state_bytes']


def test_remove_keeps_removed_points_in_memory():
    res = K.experiment(blobs(), task='remove', memory=(0.1,), remove=20, remove_by='random')
    n_keep = 400 - 20
    assert row(res, 'kprior', 0.1)['mem_size'] == K.memory_size(0.1, n_keep) + 20
    assert row(res, 'replay', 0.1)['mem_size'] == K.memory_size(0.1, n_keep)


def test_same_seed_same_rows_and_other_seed_differs():
    a = K.experiment(blobs(), task='add', memory=(1.0, 0.1), seed=1, select='random')
    b = K.experiment(blobs(), task='add', memory=(1.0, 0.1), seed=1, select='random')
    c = K.experiment(blobs(), task='add', memory=(1.0, 0.1), seed=2, select='random')
    assert a.stable() == b.stable()
    assert a.stable() != c.stable()


def test_mlp_determinism_and_close_to_batch():
    data = blobs(n=300, d=9, c=10, seed=4)
    kw = dict(model='mlp', memory=(1.0, 0.05), hidden=(16,), steps=60, lr=1e-2, delta=1.0, new_classes=[9])
    a = K.experiment(data, task='add', seed=0, **kw); b = K.experiment(data, task='add', seed=0, **kw)
    assert a.stable() == b.stable()
    assert abs(row(a, 'kprior', 1.0)['acc'] - row(a, 'batch')['acc']) < 0.1
    assert all(math.isfinite(r['nll']) for r in a)


def test_change_model_runs_for_both_models():
    r = K.experiment(blobs(n=200, c=3), task='change_model', memory=(1.0, 0.1), old_hidden=(8,), steps=50)
    # no warm-started Batch when the architecture changes: w_* has the wrong shape to start from
    assert {x['method'] for x in r} == {'kprior', 'replay', 'replay_random', 'batch', 'wstar'}
    assert math.isnan(row(r, 'wstar')['weight_err'])
    r = K.experiment(blobs(n=200, c=3), task='change_model', model='mlp', memory=(0.5,), old_hidden=(8, 8),
                     hidden=(8,), steps=30)
    assert len(r) == 5


def test_rows_follow_the_contract():
    from adaptbook.core import check_rows
    res = check_rows(K.experiment(blobs(n=150), task='add', memory=(1.0, 0.2)))
    assert res.meta['knob'] == 'memory' and res.meta['name'] == 'kprior'
    assert {(r['method'], r['role']) for r in res} == {('batch', 'retrain'), ('kprior', 'adapt'), ('replay', 'baseline'),
                                                       ('replay_random', 'baseline'), ('batch_warm', 'baseline'),
                                                       ('wstar', 'baseline')}
    assert [r['method'] for r in res if r['role'] == 'retrain'] == ['batch']
    for r in res:
        assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] == r['examples']
        assert r['curve_acc'][-1] == r['acc']
    # K-prior and Replay start from the old model (the same accuracy at 0 examples); Batch from a zero GLM
    k, rp, b = row(res, 'kprior', 0.2), row(res, 'replay', 0.2), row(res, 'batch')
    assert k['curve_acc'][0] == rp['curve_acc'][0]
    Xte, yte = blobs(n=150)[2:]
    assert b['curve_acc'][0] == (yte == 0).double().mean().item()
    # K-prior's cost includes the old model's soft labels on the memory: its first step starts after |M| examples
    assert k['curve_examples'][1] >= k['mem_size']


def test_the_knob_sweep_and_methods():
    res = K.experiment(blobs(n=150), task='add', memory=0.3, methods='kprior')
    assert [(r['method'], r['memory']) for r in res] == [('kprior', 0.3)]
    assert math.isnan(res[0]['weight_err'])                 # no Batch to compare with
    res = K.experiment(blobs(n=150), task='add', memory=(1.0, 0.5, 0.1), methods=('kprior', 'replay'))
    assert [r['memory'] for r in res if r['method'] == 'kprior'] == [1.0, 0.5, 0.1]
    sizes = [r['mem_size'] for r in res if r['method'] == 'kprior']
    assert sizes == sorted(sizes, reverse=True)


def test_task_and_model_are_keyword_only():
    with pytest.raises(TypeError, match='positional'):
        K.experiment(blobs(n=100), 'add')


def test_newton_curve_is_recorded():
    X, y, Xt, yt = blobs(n=100)
    m, led = K.glm(7, 4), K.Ledger('cpu')
    curve = K.Curve(lambda: (m(Xt.double()).argmax(1) == yt).double().mean().item(), led)
    curve.record()
    K.newton(m, [(X.double(), y, 1)], 1.0, ledger=led, curve=curve)
    curve.finish()
    assert len(curve.acc) >= 3 and curve.examples == sorted(curve.examples) and curve.acc[-1] > curve.acc[0]


# --- w*, warm-started Batch, the first-order path, the stopping rule ---------------------------------------------

@pytest.mark.parametrize('task,opts', [('add', {'new_frac': 0.2}), ('remove', {'remove': 25}),
                                       ('change_reg', {'delta_new': 0.5})])
def test_wstar_and_warm_batch_rows(task, opts):
    res = K.experiment(blobs(), task=task, memory=(1.0, 0.1), delta=2.0, **opts)
    w, bw, b = row(res, 'wstar'), row(res, 'batch_warm'), row(res, 'batch')
    assert w['memory'] is None and bw['memory'] is None
    assert w['examples'] == 0 and w['steps'] == 0 and w['curve_examples'] == [0]
    assert w['weight_err'] > 1e-3                                  # the old model is not the new solution
    assert bw['weight_err'] <= 1e-6                                # the same convex objective: the same minimizer
    assert bw['curve_acc'][0] == row(res, 'kprior', 0.1)['curve_acc'][0] == w['acc']   # both start at w*
    assert bw['examples'] <= b['examples']                         # a warm start needs no more passes here
    assert row(res, 'kprior', 1.0)['weight_err'] <= 1e-6
    # (no claim here that K-prior at 10 % beats w*: on these easy blobs the change barely moves the solution and it
    # does not; test_a7a_headline_rows checks it on the chapter's setting)


def test_a7a_headline_rows():
    # the official a7a-161 add-data setting, held-out test set a7a.t: w* is a row; exact at 100 %; closer than w* at 10 %
    res = K.experiment(K.resolve('a7a'), memory=(1.0, 0.1), seed=0,
                       methods=('kprior', 'batch', 'batch_warm', 'wstar'), **K.HEADLINE_A7A)
    assert len(res.where(method='wstar')) == 1
    assert row(res, 'kprior', 1.0)['weight_err'] <= 1e-6
    assert row(res, 'kprior', 0.1)['weight_err'] < row(res, 'wstar')['weight_err']
    assert row(res, 'batch_warm')['examples'] < row(res, 'batch')['examples']


def test_solve_wstar_is_the_old_model():
    prob = K.prepare(blobs(), task='add')
    net = K.solve(prob, 'wstar', K.pick_memory(prob, 0.1))
    assert torch.equal(K.flat(net), K.flat(prob.old))
    with pytest.raises(ValueError, match='wstar'):
        K.adaptation_parts('add', 'wstar', old_model=prob.old, delta=1.0, X_old=prob.X, y_old=prob.y, mem=prob.pool[:3])
    cm = K.prepare(blobs(n=120, c=3), task='change_model', old_hidden=(4,), steps=10)
    with pytest.raises(ValueError, match="batch_warm"):
        cm.start('batch_warm')


def test_first_order_path_reaches_newton():
    prob = K.prepare(blobs(n=300, d=5, c=3), task='add', delta=2.0)
    lb = K.first_order_path(prob, 'lbfgs', 1.0)
    assert lb['final'] <= 1e-6 and lb['weight_err'][0] > 1e-2     # from w* to the retrained model, gradients only
    assert lb['evals'] == sorted(lb['evals']) and lb['evals'][-1] > lb['newton_evals']
    ad = K.first_order_path(prob, 'adam', 1.0, steps=800, lr=1e-2)
    assert min(ad['weight_err']) < 1e-3 * ad['weight_err'][0]
    part = K.first_order_path(prob, 'lbfgs', 0.1)                # a partial memory: a different minimizer
    assert part['final'] > 1e-3
    with pytest.raises(ValueError, match="solver='sgd'"):
        K.first_order_path(prob, 'sgd')


def test_adam_stopping_rule():
    X, y = blobs(n=200, d=4, c=3)[:2]
    led_all, led_tol = K.Ledger('cpu'), K.Ledger('cpu')
    torch.manual_seed(0); m1 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    m2 = K.copy.deepcopy(m1)
    K.adam(m1, [(X, y, 1)], 20.0, steps=600, lr=1e-2, ledger=led_all)
    K.adam(m2, [(X, y, 1)], 20.0, steps=600, lr=1e-2, tol=1e-3, ledger=led_tol)
    assert led_all.steps == 600 and 50 < led_tol.steps < 600       # it stops once the objective stops improving
    with pytest.raises(ValueError, match='tol'):
        K.adam(m2, [(X, y, 1)], 1.0, steps=5, tol=-1.0)


# --- the prose is rendered from the results --------------------------------------------------------------------------

def test_prose_agrees_with_the_numbers():
    import re
    import numpy as np
    res = K.over_seeds(blobs(n=300, seed=2), range(3), memory=(1.0, 0.1), task='add', delta=2.0)
    c = K.claims(res, 0.1)
    text = K.prose(c)
    line = lambda start: next(t for t in text if t.startswith(start))
    by = lambda m, s, f=None: row(K.Results([r for r in res if r['seed'] == s], res.meta), m, f)
    acc = {m: np.mean([by(m, s, f)['acc'] for s in range(3)]) for m, f in (('batch', None), ('wstar', None), ('kprior', 0.1))}
    gw = 100 * (acc['wstar'] - acc['batch'])
    s0 = text[0]
    assert f"{acc['wstar']:.2%}" in s0 and f"{acc['batch']:.2%}" in s0 and f"{acc['kprior']:.2%}" in s0
    assert f"{abs(gw):.2f} pt {'above' if gw >= 0 else 'below'} Batch" in s0
    closer = [100 * (abs(by('wstar', s)['acc'] - by('batch', s)['acc']) - abs(by('kprior', s, 0.1)['acc'] - by('batch', s)['acc']))
              for s in range(3)]
    assert f"{abs(np.mean(closer)):.2f} ± {np.std(closer, ddof=1):.2f} pt" in s0
    assert ('pt closer to Batch' in s0) == (np.mean(closer) > 0)
    assert f"closer on {sum(v > 0 for v in closer)} of 3 seeds" in s0
    werr_w = [by('wstar', s)['weight_err'] for s in range(3)]
    werr_k = [by('kprior', s, 0.1)['weight_err'] for s in range(3)]
    ws = line('In weight space')
    assert f"{min(werr_w):.2f}–{max(werr_w):.2f}" in ws and f"{min(werr_k):.2f}–{max(werr_k):.2f}" in ws
    assert f"closer to Batch on {sum(k < w for k, w in zip(werr_k, werr_w))} of 3." in ws
    rp = np.mean([by('replay', s, 0.1)['acc'] for s in range(3)])
    assert f"scores {rp:.2%}" in line('Replay, retrained on the same 10 % memory')
    full = max(by('kprior', s, 1.0)['weight_err'] for s in range(3))
    assert f"{full:.0e}" in line('With all old data') and full <= 1e-6
    ex_cold = np.mean([by('kprior', s, 0.1)['examples'] / by('batch', s)['examples'] for s in range(3)])
    ex_warm = np.mean([by('kprior', s, 0.1)['examples'] / by('batch_warm', s)['examples'] for s in range(3)])
    assert f"{ex_cold:.2f} ± " in line('Cost in examples') and f"{ex_warm:.2f} ± " in line('Cost in examples')
    secs = line('In seconds')
    sec = [float(x) for x in re.findall(r'(\d+\.\d+) ± \d+\.\d+×', secs)]
    sec_cold = np.mean([by('kprior', s, 0.1)['seconds'] / by('batch', s)['seconds'] for s in range(3)])
    assert abs(sec[0] - sec_cold) < 0.006
    sd_cold = float(re.findall(r'\d+\.\d+ ± (\d+\.\d+)×', secs)[0])
    word = 'about as fast as' if abs(sec[0] - 1) <= sd_cold else 'faster than' if sec[0] < 1 else 'slower than'
    assert f'{word} retraining from zero' in secs           # a ratio within one sd of 1 is no difference (wall time)
    ex_full = np.mean([by('kprior', s, 1.0)['examples'] / by('batch', s)['examples'] for s in range(3)])
    at_full = line('At 100 % memory')
    assert f"{ex_full:.2f} ± " in at_full and ('(more:' in at_full) == (ex_full > 1)
    with pytest.raises(ValueError, match="'wstar'"):
        K.claims(K.Results([r for r in res if r['method'] != 'wstar'], res.meta))
    # without rows at 100 % memory and without Replay, those sentences are left out, not made up
    part = K.claims(K.Results([r for r in res if not (r['method'] == 'kprior' and r['memory'] == 1.0)
                               and r['method'] not in ('replay', 'batch_warm')], res.meta), 0.1)
    assert not {'acc_full', 'werr_full', 'ex_full', 'acc_replay', 'ex_warm', 'sec_warm'} & set(part)
    text = K.prose(part)
    assert not any(t.startswith(('With all old data', 'At 100 %', 'Replay')) or 'warm' in t for t in text)
    assert f"{ex_cold:.2f} ± " in text[-2] and 'Batch retrained from scratch' in text[-2]


def _fake_claims(closer, model='mlp', acc_k=(0.95, 0.951, 0.949)):
    "A claims dict for three seeds with the given paired gains `closer_pt` (points)."
    n = len(closer)
    one = lambda v: [v] * n
    return dict(memory=0.1, seeds=list(range(n)), model=model, acc_batch=one(0.96), acc_wstar=one(0.92),
                acc_kprior=list(acc_k), nll_batch=one(0.1), nll_wstar=one(0.2), nll_kprior=one(0.12),
                werr_wstar=one(0.5), werr_kprior=one(0.4), closer_pt=list(closer), ex_batch=one(1000.0),
                ex_warm_batch=one(800.0), ex_cold=one(0.2), ex_warm=one(0.25), sec_cold=one(0.3), sec_warm=one(0.4),
                acc_full=one(0.958), werr_full=one(0.3), ex_full=one(1.1), sec_full=one(1.2))


def test_prose_says_helped_only_beyond_the_seeds_spread():
    assert K.prose(_fake_claims([3.0, 3.2, 2.8]))[0].endswith('shows that adapting helped here.')
    within = K.prose(_fake_claims([0.5, -0.4, 0.3]))[0]          # mean 0.13 pt, sd 0.47: inside the spread
    assert 'within the seeds\' spread' in within and 'closer on 2 of 3 seeds' in within
    worse = K.prose(_fake_claims([-1.0, -1.2, -0.8]))[0]
    assert 'pt further from Batch' in worse and worse.endswith('does not show that adapting helped here.')
    # a K-prior accuracy that varies more than the gain over the seeds is not a gain either
    noisy = K.prose(_fake_claims([1.0, 1.1, 0.9], acc_k=(0.93, 0.96, 0.99)))[0]
    assert 'within the seeds\' spread' in noisy


def test_prose_for_a_network_quotes_no_weight_errors():
    text = K.prose(_fake_claims([3.0, 3.2, 2.8]))
    assert not any('weight space' in t or 'relative weight error' in t for t in text)
    assert any(t.startswith('Test NLL: w* 0.200') for t in text)
    assert any('95.80% against Batch' in t and 'approximately' in t for t in text)
    convex = K.prose(_fake_claims([3.0, 3.2, 2.8], model='logreg'))
    assert any(t.startswith('In weight space') for t in convex)
    assert any("0.3 (relative, at most) from Batch's: not Batch's solution" in t for t in convex)   # not exact: not 'is Batch'
    assert not any('K-prior is Batch' in t for t in convex)


def test_prose_with_one_seed_claims_nothing_about_the_spread():
    c = _fake_claims([3.0])
    c = {k: (v[:1] if isinstance(v, list) else v) for k, v in c.items()} | {'seeds': [0]}
    first = K.prose(c)[0]
    assert 'spread is unknown' in first and 'nan' not in first and 'shows that adapting helped' not in first


def test_notebook_markdown_types_no_results():
    # every result in the K-priors prose is printed by code (settings such as "10 % memory", "δ 50 → 5" or "within
    # 0.5 point" are not results)
    from conftest import typed_result
    hit = typed_result('10_kprior')
    assert hit is None, f"a number typed into the markdown: {hit}"


def test_widget_reruns_on_the_toy():
    import matplotlib
    matplotlib.use('Agg')
    ex = K.widget()
    first = ex.png
    ex.set(memory=0.02)
    assert ex.png != first and len(ex.cache) == 2
    ex.set(task='remove')
    assert ex.png != first
    # the panel names the value as its tab does (#34: tabs read 'memory = 10%' over a panel titled 'memory = 0.1')
    html = ex.static_html()
    assert 'memory = 2%' in html and ex.figure.axes[0].get_title() == 'memory = 2%'


def test_memory_picture_needs_2d():
    with pytest.raises(ValueError, match='7 features'):
        K.memory_picture(blobs(n=100))


def test_results_roundtrip():
    res = K.experiment(blobs(n=120), task='add', memory=(0.2,))
    back = K.Results.from_json(res.to_json())
    assert back.stable() == res.stable()


# --- bad input -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kw,msg', [
    (dict(memory=(0,)), 'memory fraction 0'), (dict(memory=(1.5,)), '(0, 1]'), (dict(memory=(-0.1,)), '(0, 1]'),
    (dict(memory=()), 'memory=() is empty'), (dict(task='forget'), "task='forget'"), (dict(model='cnn'), "model='cnn'"),
    (dict(methods=('kprior', 'ewc')), "methods='ewc'"), (dict(select='best'), "select='best'"),
    (dict(task='remove', remove=[3, 10_000], remove_by='random'), 'outside the training set'),
    (dict(task='remove', remove=400), 'remove=400'),
    (dict(task='add', delta_new=3.0), "do not apply to task='add'"),
    (dict(task='change_reg', delta_new=-1.0), 'delta_new=-1.0'), (dict(delta=0), 'delta=0'),
    (dict(subset=2.0), 'subset=2.0'),
])
def test_bad_input(kw, msg):
    kw = {'task': 'add', **kw}
    with pytest.raises(ValueError, match=None) as e:
        K.experiment(blobs(n=100), **kw)
    assert msg in str(e.value), str(e.value)


def test_mismatched_lengths():
    X, y, Xt, yt = blobs(n=100)
    with pytest.raises(ValueError, match='rows but y_train has 99'):
        K.experiment((X, y[:99], Xt, yt), task='add')
    with pytest.raises(ValueError, match='rows but targets'):
        K.objective(K.glm(7, 4), [(X.double(), y[:5], 1)], 1.0)


def test_explicit_cpu_device():
    res = K.experiment(blobs(n=120), task='remove', memory=(0.5,), remove=10, device='cpu')
    assert res.meta['device'] == 'cpu' and len(res) == 6     # batch, wstar, batch_warm, kprior, replay, replay_random
    with pytest.raises(ValueError, match="device='gpu!'"):
        K.experiment(blobs(n=120), task='add', device='gpu!')

def test_replay_random_uses_a_random_memory_and_majority_is_recorded():
    r = K.experiment('digits', memory=(0.1,), methods=('replay', 'replay_random', 'batch'))
    rows = {x['method']: x for x in r}
    assert rows['replay_random']['role'] == 'baseline' and rows['replay_random']['mem_size'] == rows['replay']['mem_size']
    assert rows['replay_random']['acc'] != rows['replay']['acc'] or rows['replay_random']['weight_err'] != rows['replay']['weight_err']
    assert 0 < r.meta['majority'] < 0.2        # ten balanced classes: the majority class is about 10 %


def test_every_solver_takes_float32_inputs_with_a_float64_model():
    "Issue #33, kind 10: Newton converted float32 X itself; L-BFGS and Adam raised a dtype error. Now all three agree."
    kprior = K
    X = torch.randn(50, 5, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    out = {}
    for solver in ('newton', 'lbfgs', 'adam'):
        m = torch.nn.Linear(5, 2).double()
        torch.nn.init.zeros_(m.weight), torch.nn.init.zeros_(m.bias)
        kprior.fit_model(m, [(X, y, 1), (X[:5], torch.full((5, 2), 0.5), 1)], 1.0, solver=solver, steps=50)
        out[solver] = kprior.flat(m)
        assert out[solver].dtype == torch.float64 and torch.isfinite(out[solver]).all()
    assert torch.allclose(out['newton'], out['lbfgs'], atol=1e-6)
