"Tests of the zapping chapter (adaptbook.zapping)."
import math

import numpy as np
import pytest
import torch
from torch import nn

from adaptbook.core import Ledger, check_rows
from adaptbook import zapping as Z
from adaptbook.zapping import (asb_episode, convnet, experiment, fresh_head, lstsq_readout, pretrain_iid, train_all,
                               train_head, transfer_data, zap_)

TINY = dict(pretrain_classes=10, pretrain_epochs=2, episodes=4, widths=(4, 4, 4), hidden=16, n_classes=4, shots=5,
            iid_epochs=2, scratch_epochs=2, lrs=(1e-2, 1e-3), memory=8)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "A private encoder cache, empty in memory and on disk."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    monkeypatch.setattr(Z, '_NETS', {})
    return tmp_path


def _tensors(n_classes=4, per_class=12, seed=0, size=28):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, size, size, generator=g)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    X = (protos[y] + 0.2 * torch.rand(len(y), size, size, generator=g)).clamp(0, 1)
    return X, y


def _data(seed=0):
    Xtr, ytr = _tensors(seed=seed)
    Xte, yte = _tensors(per_class=4, seed=seed + 1)
    return Xtr, ytr, Xte, yte


def _pre():
    Xtr, ytr = _tensors(10, 8, seed=5)
    Xte, yte = _tensors(10, 2, seed=6)
    return Xtr, ytr, Xte, yte


# --- zap_ -----------------------------------------------------------------------------------------------------------
def test_zap_changes_exactly_the_chosen_rows_and_leaves_bias_and_optimizer_state():
    lin = nn.Linear(6, 7)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    lin(torch.randn(3, 6)).sum().backward()
    opt.step()
    W0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    state0 = {k: v.clone() for k, v in opt.state[lin.weight].items()}
    idx = zap_(lin, [0, 4, 5], torch.Generator().manual_seed(1))
    assert idx.tolist() == [0, 4, 5]
    assert (lin.weight != W0).any(1).nonzero().flatten().tolist() == [0, 4, 5]
    assert torch.equal(lin.bias, b0)
    for k, v in opt.state[lin.weight].items(): assert torch.equal(v, state0[k]), k


def test_zap_fraction_all_and_fan():
    lin = nn.Linear(200, 400)
    assert len(zap_(lin, 0.1, torch.Generator().manual_seed(0))) == 40
    assert len(zap_(lin, None)) == 400 and len(zap_(lin, 1.0)) == 400
    zap_(lin, None, torch.Generator().manual_seed(0))
    assert abs(lin.weight.std().item() - math.sqrt(2 / 200)) < 0.002
    zap_(lin, None, torch.Generator().manual_seed(0), fan='stacked')      # the official code's fan-in k·in
    assert abs(lin.weight.std().item() - math.sqrt(2 / (200 * 400))) < 1e-4


def test_zap_is_deterministic_given_a_generator():
    a, b = nn.Linear(5, 9), nn.Linear(5, 9)
    b.load_state_dict(a.state_dict())
    zap_(a, 0.5, torch.Generator().manual_seed(3))
    zap_(b, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a.weight, b.weight)


# --- pre-training ---------------------------------------------------------------------------------------------------
def test_zap_every_beyond_the_epochs_is_refused():
    "A zap_every that never zaps (>= epochs) is refused, not run as if zapped; one that zaps changes the network."
    X, y = _tensors(5, 8)
    nets = [convnet(5, (4, 4, 4), 16, seed=0) for _ in range(2)]
    with pytest.raises(ValueError, match='zap_every=3 with epochs=3 never zaps'):
        pretrain_iid(nets[1], X, y, epochs=3, zap_every=3, bs=16)
    h0 = pretrain_iid(nets[0], X, y, epochs=3, zap_every=0, bs=16)
    h1 = pretrain_iid(nets[1], X, y, epochs=3, zap_every=2, bs=16)   # one zap, at the start of epoch 2
    assert h0[:2] == h1[:2] and h0[2] != h1[2]


def test_asb_episode_zaps_only_the_class_row_before_learning():
    X, y = _tensors(5, 8)
    net = convnet(5, (4, 4, 4), 16, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    led = Ledger('cpu')
    asb_episode(net, opt, X, y, torch.nonzero(y == 2).flatten()[:4], 2, inner_lr=0.0, memory=6,
                generator=torch.Generator().manual_seed(0), ledger=led)
    after = net.state_dict()
    W0, W1 = before[f'{len(net) - 1}.weight'], after[f'{len(net) - 1}.weight']
    assert (W0 != W1).any(1).nonzero().flatten().tolist() == [2]
    for k in before:
        if 'running' in k or 'num_batches' in k or k == f'{len(net) - 1}.weight': continue
        assert torch.equal(before[k], after[k]), k
    assert led.steps == 5 and led.fwd_examples == 4 + 10          # 4 single-image steps + one batch of 4 + 6


# --- transfer -------------------------------------------------------------------------------------------------------
def test_sequential_transfer_sees_each_image_once_in_class_order():
    g = torch.Generator().manual_seed(0)
    ytr, yte = torch.arange(6).repeat_interleave(5), torch.arange(6).repeat_interleave(2)
    Ztr, Zte = torch.randn(30, 8, generator=g), torch.randn(12, 8, generator=g)
    out = train_head(Ztr, ytr, Zte, yte, order='seq', lr=1e-2, block=2, cost=(30, 0.0))
    assert out['ledger'].steps == 30 and out['ledger'].fwd_examples == 30 + 30
    assert out['classes_seen'] == [2, 4, 6] and len(out['acc_seen']) == 3
    assert out['curve'].examples[0] == 0


def test_lstsq_readout_matches_numpy():
    g = torch.Generator().manual_seed(0)
    Ztr, ytr = torch.randn(50, 6, generator=g), torch.arange(50) % 3
    head = lstsq_readout(Ztr, ytr, ridge=1e-10)
    Z1 = np.c_[Ztr.double().numpy(), np.ones(50)]
    W = np.linalg.lstsq(Z1, np.eye(3)[ytr.numpy()], rcond=None)[0]
    assert np.allclose(head.weight.detach().numpy(), W[:-1].T, atol=1e-4)
    assert np.allclose(head.bias.detach().numpy(), W[-1], atol=1e-4)


def test_fresh_head_is_kaiming_with_zero_bias():
    h = fresh_head(300, 500, seed=0)
    assert torch.all(h.bias == 0) and abs(h.weight.std().item() - math.sqrt(2 / 300)) < 0.002


# --- experiment -----------------------------------------------------------------------------------------------------
def test_rows_and_knob_sweep_on_unseen_tensors(cache):
    res = experiment(_data(), zap_every=(0, 1, 2), pretrain=_pre(), **(TINY | dict(pretrain_epochs=3)))   # 2 zaps once in 3 epochs
    check_rows(res)
    assert res.meta['knob'] == 'zap_every'
    assert {r['method'] for r in res if r['role'] == 'retrain'} == {'scratch'}
    setups = [r for r in res if r['role'] == 'setup']
    assert [(r['pretraining'], r['zap_every']) for r in setups] == [(k, z) for k in ('iid', 'asb') for z in (0, 1, 2)]
    for r in res:
        if r['role'] in ('adapt', 'baseline', 'retrain'):
            assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] <= r['examples']
        if r.get('protocol') in ('seq_head', 'iid_head'):
            # the lr is chosen on validation images (a third of each class's shots), never on the test images
            assert r['lrs'] == [1e-2, 1e-3] and len(r['val_acc_by_lr']) == 2
            assert r['lr'] == r['lrs'][int(np.argmax(r['val_acc_by_lr']))]
            assert r['role'] == ('adapt' if r['zap_every'] else 'baseline')
    assert sorted(cache.rglob('*.pt')) and len(list(cache.rglob('*.pt'))) == 6


def test_same_seed_same_rows_and_the_cache_gives_the_same_encoder(cache):
    a = experiment(_data(), zap_every=(0, 1), pretrain=_pre(), **TINY)
    assert a.meta['cached'] == [False] * 4
    Z._NETS.clear()                                                # from the disk cache this time
    b = experiment(_data(), zap_every=(0, 1), pretrain=_pre(), **TINY)
    assert b.meta['cached'] == [True] * 4
    assert a.stable() == b.stable()
    c = experiment(_data(), zap_every=(0, 1), pretrain=_pre(), seed=1, **TINY)
    assert c.stable() != a.stable()


def test_all_layers_moves_the_encoder_head_only_does_not(cache):
    methods = ('seq_head', 'iid_head', 'seq_all_layers', 'iid_all_layers')
    assert not set(Z.ALL_LAYERS) & set(Z.METHODS)                  # not run by default
    res = experiment(_data(), zap_every=(0, 1), pretraining=('iid',), pretrain=_pre(), methods=methods, **TINY)
    check_rows(res)
    rows = [r for r in res if r['role'] != 'setup']
    assert sorted((r['protocol'], r['zap_every']) for r in rows) == sorted((m, z) for m in methods for z in (0, 1))
    for r in rows:
        assert r['method'] == f"iid/{r['protocol']}" and r['role'] == ('adapt' if r['zap_every'] else 'baseline')
        assert r['lrs'] == [1e-2, 1e-3] and len(r['val_acc_by_lr']) == 2
        assert r['lr'] == r['lrs'][int(np.argmax(r['val_acc_by_lr']))]
        assert r['curve_examples'][0] == 0 and r['curve_examples'][-1] <= r['examples'] and r['steps'] > 0
        if r['protocol'].endswith('_head'): assert r['encoder_shift'] == 0.0, r['method']
        else: assert r['encoder_shift'] > 1e-3, r['method']
    seq = next(r for r in rows if r['protocol'] == 'seq_all_layers')
    assert seq['classes_seen'] == [4] and seq['steps'] == 4 * TINY['shots'] and len(seq['acc_seen']) == 1
    for path in cache.rglob('*.pt'):                               # the cached pre-trained nets were not fine-tuned
        disk = torch.load(path, map_location='cpu', weights_only=True)['state']
        mem = Z._NETS[path.name][0].state_dict()
        assert all(torch.equal(disk[k], mem[k].cpu()) for k in disk), path.name


def test_train_all_fine_tunes_a_copy_with_batchnorm_frozen_only_when_sequential():
    Xtr, ytr, Xte, yte = _data()
    net = convnet(7, (4, 4, 4), 16)
    state0 = {k: v.clone() for k, v in net.state_dict().items()}
    for order in ('seq', 'iid'):
        out = train_all(net, Xtr, ytr, Xte, yte, order=order, lr=1e-2, epochs=2, bs=16)
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in state0.items())   # the original is untouched
        ft = out['net']
        assert ft[-1].out_features == 4 and Z.encoder_shift(net[:-1], ft[:-1]) > 1e-3
        bn = [k for k in state0 if k.endswith('running_mean')]
        moved = [not torch.equal(ft.state_dict()[k], state0[k]) for k in bn]
        assert moved == [order == 'iid'] * len(bn), (order, moved)
        assert out['ledger'].steps == (len(ytr) if order == 'seq' else 2 * math.ceil(len(ytr) / 16))
        assert out['curve'].examples[0] == 0 and 0 <= out['acc'] <= 1


def test_omniglot_pretraining_and_transfer(cache):
    res = experiment('omniglot', zap_every=(1,), pretraining=('iid',), methods=('seq_head', 'lstsq'), **TINY)
    check_rows(res)
    assert res.meta['n_classes'] == 4 and {r['method'] for r in res} == {'pretrain/iid', 'iid/seq_head', 'iid/lstsq'}
    Xtr, ytr, Xte, yte = transfer_data('omniglot', shots=15, n_classes=5, seed=0)
    assert Xtr.shape == (75, 1, 28, 28) and Xte.shape == (25, 1, 28, 28) and ytr.bincount().tolist() == [15] * 5


def _bad_shape():
    Xtr, ytr, Xte, yte = _data()
    return Xtr[:, None].expand(-1, 3, -1, -1), ytr, Xte[:, None].expand(-1, 3, -1, -1), yte


def _nan():
    Xtr, ytr, Xte, yte = _data()
    Xtr = Xtr.clone()
    Xtr[0, 0, 0] = float('nan')
    return Xtr, ytr, Xte, yte


BAD = [
    (dict(pretraining=('maml',)), ValueError, 'pretraining'),
    (dict(pretraining=()), ValueError, 'pretraining'),
    (dict(zap_every=-1), ValueError, 'zap_every'),
    (dict(zap_every=1.5), ValueError, 'zap_every'),
    (dict(zap_every=(0, True)), ValueError, 'zap_every'),
    (dict(zap_rows=[10]), ValueError, 'rows'),
    (dict(zap_rows=0.0), ValueError, 'rows'),
    (dict(zap_rows=1.5), ValueError, 'rows'),
    (dict(methods=('maml',)), ValueError, 'methods'),
    (dict(fan='fan_out'), ValueError, 'fan'),
    (dict(standardise='yes'), TypeError, 'standardise'),
    (dict(arch='resnet'), ValueError, 'arch'),
    (dict(lrs=(0.0,)), ValueError, 'lrs'),
    (dict(shots=13), ValueError, 'shots'),
    (dict(shots=0), ValueError, 'shots'),
    (dict(pretrain=5), TypeError, 'pretrain'),
    (dict(data=_bad_shape()), ValueError, 'X_train'),
    (dict(data=(torch.rand(48, 784), torch.arange(48) % 4, torch.rand(8, 784), torch.arange(8) % 4)), ValueError, 'X_train'),
    (dict(data=_nan()), ValueError, 'X_train'),
    (dict(data=(torch.rand(48, 28, 28), torch.arange(40) % 4, torch.rand(8, 28, 28), torch.arange(8) % 4)), ValueError, 'rows'),
    (dict(data=(torch.rand(48, 28, 28), (torch.arange(48) % 4) + 0.5, torch.rand(8, 28, 28), torch.arange(8) % 4)), ValueError, 'integer'),
]

@pytest.mark.parametrize('kw,err,msg', BAD, ids=[f'{i}-{m}' for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_raises_before_training(kw, err, msg, cache, monkeypatch):
    def boom(*a, **k): raise AssertionError('training started before the input was checked')
    monkeypatch.setattr(Z, 'pretrain_iid', boom)
    monkeypatch.setattr(Z, 'fit', boom)
    from adaptbook import zapping_method              # the pre-training loops are the method's
    for f in ('pretrain_iid', 'pretrain_asb', 'fit'): monkeypatch.setattr(zapping_method, f, boom)
    kw = dict(kw)
    data = kw.pop('data', None) or _data()
    with pytest.raises(err, match=msg):
        experiment(data, pretrain=kw.pop('pretrain', _pre()), **(TINY | kw))


def test_zoo_encoders_on_classes_never_used_in_development():
    """The chapter's starting points, through the public API, on Omniglot evaluation classes drawn with seeds that no
    notebook, bench script or other test uses (1000, 1001): the never-zapped encoder is trained (>= 0.6 on held-out
    drawers, recomputed here), and zapping every epoch keeps the i.i.d. head within 3 points (mean of 2 seeds)."""
    from adaptbook import zoo
    from adaptbook.core import evaluate
    _, _, Xho, yho = Z.pretrain_data('omniglot', 964)
    iid = {0: [], 1: []}
    for s in (0, 1):
        net = zoo.load(Z.zoo_name('iid', 0), seed=s, mode='quick', train=False)
        assert evaluate(net, Xho, yho)['acc'] == net.zoo_record['acc'] >= 0.6
        res = experiment('omniglot', zap_every=(0, 1), pretraining=('iid',), methods=('iid_head',),
                         mode='quick', seed=s, data_seed=1000 + s)
        assert res.meta['encoders'] == 'zoo' and res.meta["n_classes"] == 50
        for r in res:
            if r.get('protocol') == 'iid_head': iid[r['zap_every']].append(r['acc'])
    assert np.mean(iid[1]) >= np.mean(iid[0]) - 0.03, iid


def test_sequential_head_above_chance_on_held_out_classes():
    """Issue #32's criterion: on 10 Omniglot evaluation classes drawn with seeds used nowhere else (3000, 3001), the
    sequential head (one image per step, classes in order) on the chapter's never-zapped encoder and on its zapped
    encoder each reads >= 0.30, mean of 2 seeds (chance 0.10). The finding it pins: on the raw features
    (`standardise=False`) the same head stays near chance (< 0.25) on both, so the standardisation is what lifts it."""
    acc = {(std, z): [] for std in (True, False) for z in (0, 1)}
    for s in (0, 1):
        for std in (True, False):
            res = experiment('omniglot', zap_every=(0, 1), pretraining=('iid',), methods=('seq_head',), mode='quick',
                             seed=s, data_seed=3000 + s, n_classes=10, val_classes=10, standardise=std)
            assert res.meta['standardise'] is std
            for r in res:
                if r.get('protocol') == 'seq_head':
                    assert r['standardise'] is std
                    acc[std, r['zap_every']].append(r['acc'])
    means = {k: float(np.mean(v)) for k, v in acc.items()}
    assert means[True, 0] >= 0.30 and means[True, 1] >= 0.30, means
    assert means[False, 0] < 0.25 and means[False, 1] < 0.25, means


def test_standardise_is_a_fixed_layer_measured_on_pretraining_images():
    enc = convnet(4, (4, 4, 4), 16)[:-1].eval()
    X = torch.rand(40, 1, 28, 28)
    std = Z.standardiser(enc, X, n=30)
    with torch.no_grad(): raw = enc(X[torch.randperm(40, generator=torch.Generator().manual_seed(0))[:30]])
    Zs = std(raw)
    assert torch.allclose(Zs.mean(0), torch.zeros(16), atol=1e-4)
    assert torch.allclose(Zs.std(0) * std.sd, raw.std(0), atol=1e-5)     # sd = σ + ε: unit scale up to ε
    assert torch.allclose(std.sd - raw.std(0), torch.full((16,), 1e-3), atol=1e-6)
    assert not any(p.requires_grad for p in std.parameters()) and {'mu', 'sd'} <= set(std.state_dict())
    with pytest.raises(ValueError, match='at least 2'): Z.standardiser(enc, X[:1])
    with pytest.raises(ValueError, match='n='): Z.standardiser(enc, X, n=1)
    with pytest.raises(ValueError, match='one length'): Z.Standardise(torch.zeros(3), torch.ones(4))


def test_zoo_encoders_refuse_options_they_cannot_honour(monkeypatch):
    from adaptbook import zoo
    def boom(*a, **k): raise AssertionError('an encoder was loaded before the options were checked')
    monkeypatch.setattr(zoo, 'load', boom)
    with pytest.raises(ValueError, match="encoders='zoo' .*pretrain_epochs applies to encoders='train'"):
        experiment('omniglot', encoders='zoo', pretrain_epochs=3)
    with pytest.raises(ValueError, match="the zoo has no encoder for iid zap_every=2 .*omniglot-iid-zap3"):
        experiment('omniglot', zap_every=(2,), pretraining=('iid',))
    with pytest.raises(ValueError, match="the zoo has no encoder for asb zap_every=3"):
        experiment('omniglot', zap_every=(3,), pretraining=('asb',))
    with pytest.raises(ValueError, match="the zoo has no encoder for iid zap_every=3 .*arch='in'.*omniglot-iid-zap1-in"):
        experiment('omniglot', zap_every=(3,), pretraining=('iid',), arch='in')
    with pytest.raises(ValueError, match="the zoo has no encoder for asb zap_every=3 .*arch='in'.*omniglot-asb-zap1-in"):
        experiment('omniglot', zap_every=(3,), pretraining=('asb',), arch='in')
    with pytest.raises(ValueError, match="encoders='gpu'"):
        experiment('omniglot', encoders='gpu')
    with pytest.raises(ValueError, match=r'needs a validation task .*val_classes=0'):
        experiment('omniglot', val_classes=0, n_classes=5, methods=('seq_head',))
    with pytest.raises(ValueError, match='n_classes=600 \\+ val_classes=100 is more than the 659'):
        experiment('omniglot', n_classes=600, val_classes=100)


def test_transfer_inputs_a_new_user_gets_wrong_are_named():
    with pytest.raises(ValueError, match='shots=20 leaves no test image'):
        Z.transfer_tasks('omniglot', shots=20)
    X, y = _tensors(1, 12)
    with pytest.raises(ValueError, match='y_train holds 1 class'):
        experiment((X, y, X, y), shots=5)
    with pytest.raises(ValueError, match='give shots >= 2'):
        experiment(_data(), pretrain=_pre(), **(TINY | dict(shots=1)))
    res = experiment(_data(), zap_every=(0,), pretraining=('iid',), pretrain=_pre(), methods=('lstsq',), **TINY)
    assert res.meta['val_classes'] is None
    with pytest.raises(ValueError, match=r"protocol='iid_head': res has no such transfer rows; it has \['lstsq'\]"):
        Z.examples_to(res, 0.5)


def test_the_authors_kind_of_network(cache):
    """arch='in': 3×3 convolutions without padding, InstanceNorm and ReLU per block, pools 2, 2, none, flattened
    (9·width features), no BatchNorm anywhere, so a single image's forward pass does not depend on the mode; trains
    and transfers through experiment(encoders='train')."""
    net = convnet(5, (4, 4, 6), seed=0, arch='in')
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 3
    x = torch.rand(3, 28, 28)
    assert net[:-1](x).shape == (3, 54) and net(x).shape == (3, 5)
    assert torch.equal(net.train()(x[:1]), net.eval()(x[:1]))
    with pytest.raises(ValueError, match='three widths'): convnet(5, (4, 4), arch='in')
    with pytest.raises(ValueError, match='arch'): convnet(5, arch='vgg')
    assert Z.zoo_name('iid', 1, arch='in') == 'omniglot-iid-zap1-in' and Z.zoo_name('iid', 1) == 'omniglot-iid-zap1'
    res = experiment(_data(), zap_every=(0, 1), pretraining=('iid',), pretrain=_pre(), arch='in', **TINY)
    check_rows(res)
    assert res.meta['arch'] == 'in' and {r.get('arch') for r in res if r['role'] != 'retrain'} == {'in'}
    bn = experiment(_data(), zap_every=(0,), pretraining=('iid',), pretrain=_pre(), methods=('lstsq',), **TINY)
    assert bn.meta['arch'] == 'bn' and len(list(cache.rglob('*.pt'))) == 3      # separate cache entries per architecture
