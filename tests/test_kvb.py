"Tests of the discrete key-value bottleneck chapter (adaptbook.kvb)."
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from adaptbook.core import Curve, Ledger, Results, check_rows
from adaptbook.data import load
from adaptbook.models import PCAEncoder
from adaptbook import kvb as kvb_module, zoo
from adaptbook.kvb import (METHODS, ZOO_CNN, KeyValueBottleneck, KVBSettings, NearestClassMean, accuracy_matrix,
                           converge, early_stopped, embed, experiment, init_keys, key_inputs, kvb_logits,
                           stream_features, train_values, vote)


def _kvb(dim=8, C=4, J=32, dk=3, dv=3, k=1, splitter='random', seed=0, Z=None):
    kvb = KeyValueBottleneck(dim, C, J, dk, dv, k, splitter, seed=seed)
    return init_keys(kvb, torch.randn(600, dim, generator=torch.Generator().manual_seed(seed)) if Z is None else Z,
                     seed=seed)


def _toy(n=240, d=6, classes=(0, 1, 2, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(classes), d, generator=g) * 3
    y = torch.tensor(classes)[torch.arange(n) % len(classes)]
    X = centres[torch.arange(n) % len(classes)] + 0.3 * torch.randn(n, d, generator=g)
    return X, y


def test_keys_frozen_while_values_train():
    kvb = _kvb()
    keys0, proj0 = kvb.keys.clone(), kvb.proj.clone()
    X, y = _toy(d=8, classes=(0, 1, 2))
    train_values(kvb, X, y, epochs=5, bs=32)
    assert torch.equal(kvb.keys, keys0) and torch.equal(kvb.proj, proj0)
    assert [n for n, p in kvb.named_parameters()] == ['values']
    assert kvb.values.abs().sum() > 0


def test_values_start_at_zero_and_vote_is_mean_of_fetched():
    kvb = _kvb(k=2)
    assert kvb.values.abs().sum() == 0
    with torch.no_grad(): kvb.values.copy_(torch.randn_like(kvb.values))
    z = torch.randn(5, 8)
    idx, ok = kvb.lookup(z, mask=False)
    manual = torch.stack([torch.stack([kvb.values[c, idx[n, c]].sum(0) for c in range(4)]).mean(0) for n in range(5)])
    assert torch.allclose(vote(kvb.fetch(idx, ok)), manual, atol=1e-6)


@pytest.mark.parametrize('k', [1, 3])
def test_only_fetched_values_get_gradient(k):
    kvb = _kvb(k=k)
    X, y = _toy(n=20, d=8, classes=(0, 1, 2))
    idx, ok = kvb.lookup(X, mask=False)
    F.cross_entropy(vote(kvb.fetch(idx, ok)), y).backward()
    fetched = torch.zeros(4, 32, dtype=torch.bool)
    for c in range(4): fetched[c, idx[:, c].flatten()] = True
    assert torch.equal(kvb.values.grad.abs().sum(-1) != 0, fetched)
    assert fetched.sum() < fetched.numel()          # some values were not fetched, so the test can fail


def test_unused_keys_never_chosen_at_eval():
    kvb = _kvb(k=2, Z=torch.randn(2000, 8) * 3)
    X, y = _toy(n=60, d=8, classes=(0, 1, 2))         # trains only a few keys
    train_values(kvb, X * 0.1, y, epochs=2, bs=16)
    assert 0 < kvb.keys_used() < 4 * 32
    far = torch.randn(500, 8) * 5
    kvb.eval()
    idx, ok = kvb.lookup(far)
    chosen = kvb.counts.gather(1, idx.permute(1, 0, 2).flatten(1))
    assert (chosen[ok.permute(1, 0, 2).flatten(1)] > 0).all()
    kvb.mask_unused = False                            # without the mask, unused keys are chosen: the check can fail
    idx2, _ = kvb.lookup(far)
    assert (kvb.counts.gather(1, idx2.permute(1, 0, 2).flatten(1)) == 0).any()
    # a codebook with a single used key and top-2: the second slot is invalid and adds nothing
    k1 = _kvb(C=1, J=8, k=2, dim=3, dk=3)
    k1.counts[0, 5] = 1
    with torch.no_grad(): k1.values[0, 5] = torch.tensor([1., 2., 3.]); k1.values[0, 0] = 100.
    test = kvb_logits(k1, torch.randn(7, 3))
    assert torch.allclose(test, torch.tensor([1., 2., 3.]).expand(7, 3))


def test_key_init_uses_keys_and_resets_counts():
    Z = torch.rand(3000, 2) * 0.2 + 0.4
    for method in ('ema', 'kmeans'):
        kvb = init_keys(KeyValueBottleneck(2, 1, 32, 2, splitter='chunk'), Z, method)
        idx, _ = kvb.lookup(Z, mask=False)
        assert len(idx.unique()) >= 30, method
        assert kvb.counts.sum() == 0
    raw = KeyValueBottleneck(2, 1, 32, 2, splitter='chunk')
    assert len(raw.lookup(Z, mask=False)[0].unique()) < 16  # random normal keys mostly miss the data


def test_chunk_splitter_and_shapes():
    kvb = KeyValueBottleneck(6, codebooks=3, keys=4, key_dim=2, splitter='chunk')
    z = torch.arange(12.).view(2, 6)
    assert torch.equal(kvb.heads(z)[1], torch.tensor([[6., 7.], [8., 9.], [10., 11.]]))
    assert kvb(z).shape == (2, 3, 10)


def test_bad_module_arguments():
    with pytest.raises(ValueError, match='topk=9 is larger than keys=8'): KeyValueBottleneck(4, keys=8, topk=9)
    with pytest.raises(ValueError, match='does not fit the chunk splitter'): KeyValueBottleneck(10, 4, 8, 3, splitter='chunk')
    with pytest.raises(ValueError, match="splitter='pca'"): KeyValueBottleneck(4, splitter='pca')
    with pytest.raises(ValueError, match='codebooks=0'): KeyValueBottleneck(4, codebooks=0)
    with pytest.raises(ValueError, match='the label 3, outside 0..2'):
        train_values(_kvb(), torch.randn(4, 8), torch.tensor([0, 1, 2, 3]), epochs=1)


def _data():
    X, y = _toy(n=300, d=12, classes=(3, 7, 11, 20, 21))
    X = X.view(300, 3, 4)                              # unusual shape: N×3×4, labels not 0..K-1
    return X, y, X[:100] + 0.05, y[:100]


def _kw(**over):
    "Keys placed on another draw of the same kind of data (unlabelled), never on the stream's rows."
    return dict(tasks=[[3], [7, 11], [20, 21]], encoder='identity', codebooks=8, keys=32, key_dim=4,
                epochs_per_task=20, bs=32, baseline_opt='adam', baseline_lr=0.05,
                key_data=_toy(n=600, d=12, classes=(3, 7, 11, 20, 21), seed=9)[0].view(600, 3, 4)) | over


def test_experiment_on_unusual_tensors_and_pattern():
    d = _data()
    res = experiment(d, methods=METHODS, **_kw())
    check_rows(res)
    assert res.meta['knob'] == 'keys'
    setup = [r for r in res if r['role'] == 'setup']
    assert [r['method'] for r in setup] == ['encoder', 'key_init', 'lookup'] and [r['keys'] for r in setup] == [None, 32, 32]
    rest = [r for r in res if r['role'] != 'setup']
    assert sorted(r['method'] for r in rest) == sorted(METHODS)           # exactly one summary row per method
    roles = {r['method']: r['role'] for r in rest}
    assert roles['kvb'] == 'adapt' and roles['retrain'] == 'retrain'
    assert [m for m, role in roles.items() if role == 'retrain'] == ['retrain']
    assert all(role == 'baseline' for m, role in roles.items() if m not in ('kvb', 'retrain'))
    for r in rest:
        assert r['keys'] == (32 if r['method'] in ('kvb', 'retrain', 'kvb_iid', 'replay') else None)
        assert r['acc'] == r['acc_by_task'][-1] and r['curve_acc'][-1] == pytest.approx(r['acc'])
        assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] == r['examples']
    kvb = res.where(method='kvb')[0]
    assert len(kvb['acc_by_task']) == 3
    R = accuracy_matrix(res, 'kvb')
    assert R.shape == (3, 3) and kvb['avg_acc'] == pytest.approx(R[-1].mean())
    assert kvb['acc'] > 0.9 and res.where(method='mlp')[0]['acc'] < 0.6  # KVB keeps the old classes, the MLP does not
    assert kvb['state_bytes'] == 0 and kvb['model_bytes'] > 0         # keys and values are the deployed network


def test_retrain_row_carries_the_full_cost():
    "The same-protocol reference: KVB's values from zero on all data seen, after every task; cost and data counted."
    d = _data()
    E = 3
    res = experiment(d, methods=('kvb', 'retrain', 'kvb_iid'), **_kw(epochs_per_task=E))
    rt, kv, iid = (res.where(method=m)[0] for m in ('retrain', 'kvb', 'kvb_iid'))
    n = [1 * 60, 2 * 60, 2 * 60]                                         # training rows of each task (300 rows, 5 classes)
    seen = [sum(n[:t + 1]) for t in range(3)]
    assert rt['role'] == 'retrain' and rt['keys'] == kv['keys'] == 32
    assert rt['examples'] == sum(E * s for s in seen)                    # E epochs on all data seen, every retraining
    assert rt['examples_by_task'] == [sum(E * s for s in seen[:t + 1]) for t in range(3)]
    assert kv['examples'] == E * 300 and kv['examples'] < rt['examples']
    assert res.where(method='lookup')[0]['examples'] == 300              # each input looked up once, as setup
    assert rt['state_bytes'] == 300 * (12 * 4 + 8) and kv['state_bytes'] == 0   # retraining keeps every feature seen
    assert rt['curve_examples'] == sorted(rt['curve_examples']) and rt['curve_examples'][0] == 0
    assert rt['acc'] == pytest.approx(iid['acc'], abs=0.02)              # the last retraining is the i.i.d. run


def test_cost_columns_side_by_side():
    res = experiment(_data(), methods=METHODS, **_kw(epochs_per_task=2))
    for r in res:
        assert {'examples', 'seconds', 'steps', 'state_bytes'} <= set(r), r['method']
        assert r['examples'] > 0 and r['seconds'] > 0, r['method']
        if r['role'] != 'setup': assert r['model_bytes'] > 0 and r['steps'] >= 0
    m = {r['method']: r for r in res}
    assert m['kvb']['examples'] < m['retrain']['examples'] and m['ncm']['steps'] == 0


def test_iid_mlp_reference_row_exists_and_converged():
    "The default methods carry both converged i.i.d. decoders; the MLP's stopping rule is recorded."
    assert {'mlp_iid', 'linear_iid', 'retrain', 'kvb'} <= set(kvb_module.DEFAULT_METHODS)
    res = experiment(_data(), **_kw(epochs_per_task=2))
    r = res.where(method='mlp_iid')
    assert len(r) == 1 and r[0]['role'] == 'baseline' and r[0]['keys'] is None
    assert r[0]['converged'] and r[0]['ref_iters'] >= 1 and r[0]['acc'] > 0.9
    assert res.where(method='linear_iid')[0]['converged']


def test_early_stopped_keeps_the_best_epoch():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 6, generator=g)
    y = (X[:, 0] + torch.randn(400, generator=g) > 0).long()              # noisy labels: the validation loss turns
    m = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    led = Ledger('cpu')
    info = early_stopped(m, X, y, patience=3, max_epochs=200, lr=0.05, ledger=led)
    assert info['converged'] and info['best_epoch'] <= info['iters'] - 3 and led.steps > 0
    capped = early_stopped(torch.nn.Linear(6, 3), X, y, patience=50, max_epochs=2)
    assert not capped['converged'] and capped['iters'] == 2
    with pytest.raises(ValueError, match='patience=0'): early_stopped(m, X, y, patience=0)


def test_keys_never_see_the_stream(monkeypatch, tmp_path):
    "The keys are placed on Omniglot's images by default: no row the keys are fitted on is a stream feature."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))                # an empty key store: the keys are placed
    seen = []
    real = kvb_module.init_keys
    monkeypatch.setattr(kvb_module, 'init_keys', lambda kvb, Z, *a, **k: seen.append(Z.clone()) or real(kvb, Z, *a, **k))
    kw = dict(keys=(8,), methods=('kvb',), codebooks=4, key_epochs=1, epochs_per_task=1, n_train=400, n_test=100,
              key_n=500)
    res = experiment('mnist', **kw)
    Ztr, _, Zte, _ = stream_features('mnist', n_train=400, n_test=100)
    assert len(seen) == 1 and len(seen[0]) == 500 and 'Omniglot' in res.meta['key_source']
    assert torch.cdist(seen[0].cpu(), torch.cat([Ztr, Zte])).min() > 1e-4     # no key-placement row is a stream row
    Xk, _ = key_inputs(None, load('mnist', 'train').X[:10], n=500)
    assert torch.cdist(Xk.flatten(1), load('mnist', 'train').X.flatten(1)[:5000]).min() > 0
    experiment('mnist', **kw | {'key_data': 'stream'})                    # the leak, asked for: the check can fail
    assert torch.cdist(seen[1].cpu(), Ztr).min() < 1e-4 and len(seen[1]) == 400


def test_train_values_steps_through_core_fit(monkeypatch):
    "#23: the values are trained by the library's one loop, `core.fit`, with the official SGD on the values."
    calls = []
    from adaptbook import kvb_method                  # train_values is the method's (adaptbook/kvb_method.py)
    real = kvb_method.fit
    def spy(model, X, y, **kw):
        calls.append(kw)
        return real(model, X, y, **kw)
    monkeypatch.setattr(kvb_method, 'fit', spy)
    kvb = _kvb()
    X, y = _toy(n=60, d=8, classes=(0, 1, 2))
    train_values(kvb, X, y, epochs=2, bs=16)
    assert len(calls) == 1 and calls[0]['batch_loss'] is not None and calls[0]['clip'] == 1.0
    opt = calls[0]['opt']
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]['lr'] == 0.3
    assert opt.param_groups[0]['params'][0] is kvb.values


def test_settings_are_typed_and_misspellings_refused():
    s = KVBSettings.for_mode('quick')
    assert s.lr == 0.3 and s.encoder == 'cnn' and s.key_data is None and s.epochs_per_task == 5
    assert KVBSettings.for_mode('full').codebooks == KVBSettings.FULL['codebooks']
    d = _data()
    kw = _kw(epochs_per_task=2)
    a = experiment(d, methods=('kvb',), keys=kw.pop('keys'), **kw)
    b = experiment(d, methods=('kvb',), keys=32, settings=KVBSettings.for_mode('quick', **kw))
    assert Results(a.stable()) == Results(b.stable())
    with pytest.raises(TypeError, match="'codebok' is not an option of KVBSettings"):
        experiment(d, codebok=4)


def test_zoo_encoder_is_shipped_small_and_never_saw_digits():
    rec = zoo.record(ZOO_CNN, seed=0, mode='quick')
    assert rec is not None and rec['where'] == str(zoo.shipped_dir()) and rec['bytes'] < 2**20
    assert 'digit' in rec['source'] and 'mnist' not in rec['source'].lower().replace('fashion-mnist', '')
    assert rec['acc'] > 0.8                                               # Fashion-MNIST's held-out test split
    Z, _ = embed('cnn', load('mnist', 'test').X[:50], load('mnist', 'test').X[:2])
    assert Z.shape == (50, 128)


def test_converged_reference_matches_sklearn():
    "The issue's check, small: the converged probe lands within 1 pt of scikit-learn's LogisticRegression."
    from sklearn.linear_model import LogisticRegression
    kw = dict(encoder='pca', pca_dim=16, n_train=800, n_test=300, seed=3)
    res = experiment('digits', methods=('linear', 'linear_iid'), keys=(8,), **kw)
    Ztr, ytr, Zte, yte = stream_features('digits', **kw)
    assert Ztr.shape == (800, 16) and sorted(ytr.unique().tolist()) == list(range(10))
    sk = LogisticRegression(max_iter=5000).fit(Ztr.numpy(), ytr.numpy()).score(Zte.numpy(), yte.numpy())
    acc = {r['method']: r['acc'] for r in res if r['role'] != 'setup'}
    assert abs(acc['linear_iid'] - sk) <= 0.01, (acc, sk)
    assert acc['linear_iid'] > acc['linear']          # the i.i.d. reference no longer falls below the stream


def test_converge_stops_by_its_rule():
    X, y = _toy(n=200, d=5)
    m = torch.nn.Linear(5, 4)
    led = Ledger('cpu')
    info = converge(m, X, y, ledger=led)
    assert info['converged'] and info['grad'] <= 1e-5 and led.fwd_examples == info['evals'] * 200
    capped = converge(torch.nn.Linear(5, 4), X, y, max_iter=2, tol=1e-12)
    assert not capped['converged'] and capped['iters'] == 2
    with pytest.raises(ValueError, match='C=0'): converge(m, X, y, C=0)


def test_ncm_does_not_depend_on_the_order_of_the_tasks():
    X, y = _toy(n=200, d=5, classes=(0, 1, 2, 3))
    a = NearestClassMean(5, 4).update(X[y < 2], y[y < 2]).update(X[y >= 2], y[y >= 2])
    b = NearestClassMean(5, 4).update(X, y)
    mu = torch.stack([X[y == k].mean(0) for k in range(4)])
    assert torch.allclose(a(X), b(X)) and torch.equal(a(X).argmax(1), torch.cdist(X, mu).argmin(1))
    assert (NearestClassMean(5, 4).update(X[y == 1], y[y == 1])(X).argmax(1) == 1).all()   # unseen classes never win
    with pytest.raises(ValueError, match='label 4'): NearestClassMean(5, 4).update(X[:3], torch.tensor([0, 1, 4]))


def test_ncm_and_replay_rows():
    d = _data()
    res = experiment(d, methods=('kvb', 'ncm', 'replay'), **_kw(keys=(4, 32), epochs_per_task=3))
    check_rows(res)
    ncm = res.where(method='ncm')[0]
    assert ncm['role'] == 'baseline' and ncm['steps'] == 0 and ncm['examples'] == 300 and ncm['forgetting'] < 0.05
    assert ncm['acc'] > 0.9 and len(ncm['R']) == 3
    per, probe = 12 * 4 + 8, (12 * 5 + 5) * 4                           # one stored example (12 floats + a label), the probe
    for J in (4, 32):
        kvb, rp = res.where(method='kvb', keys=J)[0], res.where(method='replay', keys=J)[0]
        assert rp['role'] == 'baseline' and rp['buffer'] == (kvb['model_bytes'] - probe) // per < 300   # partial
        assert rp['model_bytes'] == probe and kvb['state_bytes'] == 0 and rp['state_bytes'] > 0   # the buffer is kept
        assert kvb['model_bytes'] - 5 * per < probe + rp['state_bytes'] <= kvb['model_bytes']   # equal bytes in all
    assert all(r['acc'] > 0.9 for r in res.where(method='replay'))      # the buffer keeps the old classes


def test_experiment_determinism_and_numpy_input():
    d = _data()
    kw = _kw(methods=('kvb', 'linear', 'retrain'), epochs_per_task=3)
    res = experiment(d, **kw)
    assert Results(experiment(tuple(t.numpy() for t in d), **kw).stable()) == Results(res.stable())
    assert Results(experiment(d, **{**kw, 'seed': 1}).stable()) != Results(res.stable())


def test_keys_sweep():
    res = experiment(_data(), methods=('kvb', 'kvb_iid', 'retrain'), **_kw(keys=(4, 32), epochs_per_task=3))
    check_rows(res)
    assert res.where(method='kvb').col('keys') == [4, 32] and res.where(method='kvb_iid').col('keys') == [4, 32]
    assert res.where(method='key_init').col('keys') == [4, 32]
    assert res.where(method='retrain').col('keys') == [4, 32]            # the same-protocol reference, per number of keys
    assert [r['keys_total'] for r in res.where(method='kvb')] == [8 * 4, 8 * 32]
    m = res.mean()
    assert {r['method'] for r in m} >= {'kvb', 'retrain'}
    with pytest.raises(ValueError, match='kvb'): accuracy_matrix(res, 'kvb', keys=7)


def test_train_values_records_a_curve():
    kvb = _kvb()
    X, y = _toy(n=120, d=8, classes=(0, 1, 2))
    led = Ledger('cpu')
    curve = Curve(lambda: (kvb_logits(kvb, X).argmax(1) == y).float().mean().item(), led)
    curve.record()
    train_values(kvb, X, y, epochs=4, bs=16, ledger=led, curve=curve)
    curve.finish()
    assert curve.examples[0] == 0 and curve.examples[-1] == led.fwd_examples == 120 * 5
    assert curve.acc[0] == pytest.approx(1 / 3, abs=0.1) and curve.acc[-1] > 0.9 and len(curve.acc) > 4


def test_experiment_default_tasks_and_pca():
    X, y = _toy(n=200, d=20, classes=(0, 1, 2, 3))
    res = experiment((X, y, X, y), encoder='pca', pca_dim=6, codebooks=4, keys=16, key_dim=3, epochs_per_task=3,
                     methods=('kvb',), key_data=_toy(n=200, d=20, seed=9)[0])
    assert res.meta['tasks'] == [[0, 1], [2, 3]]
    assert res.meta['embed_dim'] == 6
    assert math.isnan(res.where(method='encoder')[0]['acc'])


@pytest.mark.parametrize('kw, msg', [
    (dict(tasks=[[3, 7], [7, 11], [20, 21]]), 'must not overlap'),
    (dict(tasks=[[3, 7], [], [11, 20, 21]]), 'non-empty'),
    (dict(tasks=[[3, 7], [11, 20]]), 'labels [21] of the data are in no task'),
    (dict(tasks=[[3, 7, 11], [20, 21, 99]]), 'not labels of the data'),
    (dict(topk=40, keys=32), 'topk=40 is larger than keys=32'),
    (dict(topk=8, keys=(4, 32)), 'topk=8 is larger than keys=4'),
    (dict(splitter='chunk', codebooks=5, key_dim=3), 'does not fit the chunk splitter'),
    (dict(methods=('kvb', 'ewc')), "methods='ewc' is not known"),
    (dict(methods=()), 'methods=() is empty'),
    (dict(keys=()), 'keys=() is empty'),
    (dict(keys=(32, 0)), 'keys=0 must be an int'),
    (dict(keys=2.5), 'keys=2.5 must be an int'),
    (dict(encoder='vgg'), "encoder='vgg'"),
    (dict(epochs_per_task=0), 'epochs_per_task=0'),
    (dict(ref_C=0), 'ref_C=0'),
    (dict(ref_tol=-1e-5), 'ref_tol=-1e-05'),
    (dict(ref_iters=0), 'ref_iters=0'),
    (dict(lr=-1.0), 'lr=-1.0'),
    (dict(n_train=10**6), 'n_train=1000000 must be an int in 1..300'),
    (dict(key_data='cifar'), "key_data='cifar'"),
    (dict(key_data=torch.randn(10, 5)), 'key_data has rows of shape'),
])
def test_experiment_bad_input(kw, msg):
    with pytest.raises(ValueError, match=msg.replace('[', r'\[').replace(']', r'\]').replace('(', r'\(').replace(')', r'\)')):
        experiment(_data(), **{'encoder': 'identity', 'keys': 32, 'codebooks': 4, 'key_dim': 3, 'key_data': 'stream', **kw})


def test_data_is_required_and_the_rest_keyword_only():
    with pytest.raises(TypeError): experiment()
    with pytest.raises(TypeError): experiment(_data(), (32,))


def test_cnn_encoder_refuses_vectors_and_pca_is_unsupervised():
    with pytest.raises(ValueError, match='needs grey images'): embed('cnn', torch.randn(5, 7), torch.randn(2, 7))
    with pytest.raises(ValueError, match='key_data=None'): key_inputs(None, torch.randn(5, 7))
    X = load('digits').X
    a = PCAEncoder(5).fit(X)(X)
    b = PCAEncoder(5).fit(X[torch.randperm(len(X))])(X)  # the order of the rows (and the labels) does not matter
    assert torch.allclose(a, b, atol=1e-4)

def test_quick_default_size_is_a_cap_not_a_demand():
    "A named dataset smaller than the quick-mode 8k/2k (digits: 1437/360) runs on all of its rows."
    from adaptbook import kvb
    r = kvb.experiment('digits', keys=(8,), methods=('kvb',), codebooks=4, key_epochs=1, epochs_per_task=1, key_n=500)
    assert (r.meta['n_train'], r.meta['n_test']) == (1437, 360)
    with pytest.raises(ValueError, match='n_train=5000 must be an int in 1..1437'):
        kvb.experiment('digits', keys=(8,), methods=('kvb',), n_train=5000)


def test_evaluation_memo_is_exact_as_keys_come_into_use():
    "kvb_logits with a memo (the nearest keys in use kept, grown with the newly used keys only) = without one."
    from adaptbook.kvb_method import kvb_logits
    g = torch.Generator().manual_seed(0)
    for topk in (1, 3):
        kv = KeyValueBottleneck(12, codebooks=5, keys=40, key_dim=3, value_dim=4, topk=topk)
        kv.keys[:, 30:] = kv.keys[:, :10]                                 # exact duplicates: ties go to the lower index
        kv.values.data.normal_(generator=g)
        Z, memo = torch.randn(300, 12, generator=g), {}
        for step in range(6):                                             # growing, then shrinking, sets of used keys
            kv.counts.copy_((torch.rand(5, 40, generator=g) < 0.15 * step).long())
            assert torch.equal(kvb_logits(kv, Z, memo=memo), kvb_logits(kv, Z)), (topk, step)
        kv.counts.zero_()
        kv.counts[0, :3] = 1                                              # only 3 keys of one codebook: others invalid
        assert torch.equal(kvb_logits(kv, Z, memo=memo), kvb_logits(kv, Z))
        kv.keys.add_(0.5)                                                 # other keys: the memo does not serve them
        assert torch.equal(kvb_logits(kv, Z, memo=memo), kvb_logits(kv, Z))


def test_train_values_takes_a_kept_lookup_and_refuses_another_shape():
    kv = KeyValueBottleneck(6, codebooks=3, keys=8, key_dim=2, value_dim=3)
    Z, y = torch.randn(50, 6), torch.randint(0, 3, (50,))
    init_keys(kv, Z)
    a, b = copy.deepcopy(kv), copy.deepcopy(kv)
    train_values(a, Z, y, epochs=2)
    train_values(b, Z, y, epochs=2, lookup=kv.lookup(Z, mask=False))
    assert torch.equal(a.values, b.values) and torch.equal(a.counts, b.counts)
    with pytest.raises(ValueError, match=r'lookup has shapes \(49, 3, 1\)'):
        train_values(kv, Z, y, lookup=tuple(t[:49] for t in kv.lookup(Z, mask=False)))
    idx, ok = kv.lookup(Z, mask=False)
    for bad, err, msg in [((idx,), TypeError, 'pair of tensors'), ((idx.float(), ok), ValueError, 'long key indices'),
                          ((idx + 8, ok), ValueError, r'indices must lie in 0\.\.7'),
                          ((idx, ok & False), ValueError, 'mask=True')]:
        with pytest.raises(err, match=msg): train_values(kv, Z, y, lookup=bad)
    from adaptbook.kvb_method import kvb_logits
    with pytest.raises(TypeError, match='memo must be a dict'): kvb_logits(kv, Z, memo=[])
    with pytest.raises(ValueError, match='bs=0'): kvb_logits(kv, Z, bs=0, memo={})
    with pytest.raises(ValueError, match=r'z must have shape \(N, 6\)'): kv.lookup(torch.zeros(0, 99))
    with pytest.raises(TypeError, match='argument 1 must be a dense torch.Tensor'): kvb_module.tensor_digest(Z, [1])


def test_keys_are_kept_in_the_store_and_shared_through_key_seed(tmp_path, monkeypatch):
    "A second run reads its keys (the cost measured when placed), gives the same rows; key_seed shares keys across seeds."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))                # an empty store
    kw = _kw(methods=('kvb',), epochs_per_task=2)
    a, b = experiment(_data(), **kw), experiment(_data(), **kw)
    assert 'keys_read' not in a.meta and b.meta['keys_read'] == [32]
    assert repr(a.stable()) == repr(b.stable())          # the same rows, the key placement's cost as measured then
    c = experiment(_data(), seed=1, key_seed=0, **kw)
    assert c.meta['keys_read'] == [32] and c.where(method='key_init')[0]['key_seed'] == 0
    assert 'keys_read' not in experiment(_data(), seed=1, **kw).meta                   # its own keys, seed 1
    for bad in (-1, 2**70):
        with pytest.raises(ValueError, match=f'key_seed={bad}'): experiment(_data(), key_seed=bad, **kw)


def test_measured_capacity_is_shipped_and_says_whose_code_measured_it(tmp_path):
    "The shipped capacity sweep: every size and key data on 3 seeds; the stream's keys close more than the key count."
    res = kvb_module.measured_capacity()
    rows = kvb_module.capacity_table(res)
    sizes = {(r['codebooks'], r['keys']) for r in rows}
    assert {(64, 256), (128, 4096), (256, 4096)} <= sizes and {r['key_data'] for r in rows} == {'omniglot', 'stream'}
    assert all(r['seeds'] == [0, 1, 2] for r in rows) and 'provenance' in res.meta and res.meta['epochs'] == 5
    cap = {(r['key_data'], r['codebooks'], r['keys']): r for r in rows}
    assert cap[('omniglot', 128, 4096)]['kvb'] > cap[('omniglot', 64, 256)]['kvb']           # more keys, more accuracy
    assert cap[('stream', 128, 4096)]['gap'] < cap[('omniglot', 128, 4096)]['gap']            # placement decides more
    assert all(abs(r['kvb'] - r['kvb_iid']) < 0.03 for r in rows)                            # streamed ≈ all at once
    other = tmp_path / 'other.json'
    other.write_text(Results(res.rows, {**res.meta, 'code': 'feedface'}).to_json())
    assert kvb_module.measured_capacity(other).meta['current'] is False
    with pytest.raises(FileNotFoundError, match='bench/kvb_capacity.py'):
        kvb_module.measured_capacity(tmp_path / 'missing.json')
    with pytest.raises(ValueError, match='is a folder'):
        kvb_module.measured_capacity(tmp_path)
    with pytest.raises(TypeError, match='path must be a file path'):
        kvb_module.measured_capacity(3)
    bad = tmp_path / 'bad.json'
    bad.write_text(Results([{'method': 'kvb', 'acc': 0.5, 'seed': 0}], {'code': 'x'}).to_json())
    with pytest.raises(ValueError, match='every row needs method, acc, seed, key_data'): kvb_module.measured_capacity(bad)
    bad.write_text('not json')
    with pytest.raises(ValueError, match='is not a measurement written by'): kvb_module.measured_capacity(bad)
    one = Results([r for r in res.rows if not (r['method'] == 'kvb' and r['seed'] == 2)], res.meta)
    with pytest.raises(ValueError, match='every seed needs kvb, kvb_iid and linear_iid'): kvb_module.capacity_table(one)
    with pytest.raises(ValueError, match='capacity_table'): kvb_module.plot_capacity([])
    with pytest.raises(ValueError, match='capacity_table'): kvb_module.plot_capacity([{**rows[0], 'kvb': None}])
    with pytest.raises(TypeError, match='res must be Results'): kvb_module.capacity_table(rows)
    with pytest.raises(ValueError, match='no rows'): kvb_module.capacity_table(Results([]))
    with pytest.raises(ValueError, match='two rows for one key data'): kvb_module.capacity_table(Results(res.rows * 2))
    with pytest.raises(ValueError, match="path='' is empty"): kvb_module.measured_capacity('')
    assert 0 < cap[('omniglot', 128, 4096)]['used'] < cap[('stream', 128, 4096)]['used'] <= 1
    ax = kvb_module.plot_capacity(rows)
    assert ax.get_xscale() == 'log' and len(ax.lines) == 1 + 2                   # the probe and one line per key data
    import matplotlib.pyplot as plt
    plt.close(ax.figure)
