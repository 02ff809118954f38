"Tests of the discrete key-value bottleneck chapter (adaptbook.kvb)."
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptbook.data import load
from adaptbook.kvb import (KeyValueBottleneck, PCAEncoder, accuracy_matrix, embed, experiment, init_keys, kvb_logits,
                           train_values, vote)


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
    with pytest.raises(ValueError, match='labels in 0..2'):
        train_values(_kvb(), torch.randn(4, 8), torch.tensor([0, 1, 2, 3]), epochs=1)


def _data():
    X, y = _toy(n=300, d=12, classes=(3, 7, 11, 20, 21))
    X = X.view(300, 3, 4)                              # unusual shape: N×3×4, labels not 0..K-1
    return X, y, X[:100] + 0.05, y[:100]


def test_experiment_on_unusual_tensors_and_pattern():
    d = _data()
    kw = dict(tasks=[[3], [7, 11], [20, 21]], encoder='identity', codebooks=8, keys=32, key_dim=4, epochs_per_task=20,
              bs=32, methods=('kvb', 'linear', 'mlp', 'kvb_iid', 'linear_iid'), baseline_opt='adam', baseline_lr=0.05)
    res = experiment(d, **kw)
    for r in res:
        for key in ('method', 'task_index', 'acc_seen', 'acc_all', 'keys_used', 'examples', 'seconds', 'state_bytes'):
            assert key in r
    assert res.where(method='kvb').col('task_index') == [1, 2, 3]
    R = accuracy_matrix(res, 'kvb')
    assert R.shape == (3, 3) and res.meta['metrics']['kvb']['avg_acc'] == pytest.approx(R[-1].mean())
    kvb_end, mlp_end = res.where(method='kvb')[-1]['acc_all'], res.where(method='mlp')[-1]['acc_all']
    assert kvb_end > 0.9 and mlp_end < 0.6             # separable blobs: KVB keeps the old classes, the MLP does not
    assert res.where(method='kvb')[-1]['state_bytes'] > 0
    # numpy input works too, and the same seed gives identical rows; another seed changes them
    d_np = tuple(t.numpy() for t in d)
    assert experiment(d_np, **kw).stable() == res.stable()
    assert experiment(d, **{**kw, 'seed': 1}).stable() != res.stable()


def test_experiment_default_tasks_and_pca():
    X, y = _toy(n=200, d=20, classes=(0, 1, 2, 3))
    res = experiment((X, y, X, y), encoder='pca', pca_dim=6, codebooks=4, keys=16, key_dim=3, epochs_per_task=3,
                     methods=('kvb',))
    assert res.meta['tasks'] == [[0, 1], [2, 3]]
    assert res.meta['embed_dim'] == 6


@pytest.mark.parametrize('kw, msg', [
    (dict(tasks=[[3, 7], [7, 11], [20, 21]]), 'must not overlap'),
    (dict(tasks=[[3, 7], [], [11, 20, 21]]), 'non-empty'),
    (dict(tasks=[[3, 7], [11, 20]]), 'labels [21] of the data are in no task'),
    (dict(tasks=[[3, 7, 11], [20, 21, 99]]), 'not labels of the data'),
    (dict(topk=40, keys=32), 'topk=40 is larger than keys=32'),
    (dict(splitter='chunk', codebooks=5, key_dim=3), 'does not fit the chunk splitter'),
    (dict(methods=('kvb', 'ewc')), 'methods='),
    (dict(encoder='vgg'), "encoder='vgg'"),
    (dict(epochs_per_task=0), 'epochs_per_task=0'),
])
def test_experiment_bad_input(kw, msg):
    with pytest.raises(ValueError, match=msg.replace('[', r'\[').replace(']', r'\]')):
        experiment(_data(), **{'encoder': 'identity', 'keys': 32, 'codebooks': 4, 'key_dim': 3, **kw})


def test_cnn_encoder_refuses_vectors_and_pca_is_unsupervised():
    with pytest.raises(ValueError, match='needs grey images'): embed('cnn', torch.randn(5, 7), torch.randn(2, 7))
    X = load('digits').X
    a = PCAEncoder(5).fit(X)(X)
    b = PCAEncoder(5).fit(X[torch.randperm(len(X))])(X)  # the order of the rows (and the labels) does not matter
    assert torch.allclose(a, b, atol=1e-4)
