"Piggyback: frozen backbone, exact mask round trips, exact task switching, merge, bad input, the experiment contract."
import math

import pytest
import torch
from torch import nn

from adaptbook import piggyback as pg
from adaptbook.core import Results, check_rows, seed_everything


def _mlp(d=12, h=16, c=3, bn=False):
    torch.manual_seed(0)
    mid = [nn.BatchNorm1d(h)] if bn else []
    return nn.Sequential(nn.Flatten(), nn.Linear(d, h), *mid, nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c))


def _cnn(c=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, c))


def _data(shape, n=96, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, k, (n,), generator=g)


def _toy(shape=(4, 4), n=120, k=4, seed=5):
    X, y = _data(shape, n=n, k=k, seed=seed)
    return (X, y, X[:40], y[:40])


def test_straight_through_gradient_is_grad_times_weight():
    seed_everything(0)
    lin = nn.Linear(5, 3).requires_grad_(False)
    x = torch.randn(7, 5)
    W = lin.weight.clone()
    pb = pg.Piggyback(nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 2)))
    pb.add_task('t', 2)
    s = pb.parametrizations()['0'].scores['t']
    pb.body(x).sum().backward()
    # by hand: d sum(relu(x W^T + b)) / d W_eff = (relu' ⊙ 1)^T x; d/d scores := that ⊙ W (mask is all ones)
    Weff = W.clone().requires_grad_(True)
    torch.relu(x @ Weff.T + lin.bias).sum().backward()
    torch.testing.assert_close(s.grad, Weff.grad * W)


@pytest.mark.parametrize('make,shape', [(lambda: _mlp(bn=True), (3, 4)), (_cnn, (2, 6, 6))])
def test_backbone_bit_identical_after_training(make, shape):
    X, y = _data(shape)
    pb = pg.Piggyback(make())
    before = pg.backbone_state(pb)
    pb.add_task('a', 2)
    pg.train_task(pb, X, y, epochs=4, bs=16, lr_mask=1e-2, lr_head=1e-2, device='cpu')
    offs = [(m == 0).float().mean().item() for m in pg.masks_of(pb, 'a').values()]
    assert max(offs) > 0, 'the mask did not change: the test would prove nothing'
    assert pg.same_state(before, pg.backbone_state(pb))
    assert not any(p.requires_grad for n, p in pb.body.named_parameters() if '.scores.' not in n)


@pytest.mark.parametrize('n', [1, 7, 8, 9, 63, 64, 65, 1001])
def test_pack_unpack_exact_and_size(n):
    g = torch.Generator().manual_seed(n)
    masks = {'a': torch.rand(n, generator=g) > 0.5}
    data = pg.pack_masks(masks)
    assert len(data) == math.ceil(n / 8)
    assert torch.equal(pg.unpack_masks(data, {'a': (n,)})['a'], masks['a'])


def test_pack_several_layers_takes_ceil_of_total():
    g = torch.Generator().manual_seed(0)
    masks = {'w1': torch.rand(3, 5, generator=g) > .5, 'w2': torch.rand(2, 1, 3, 3, generator=g) > .5}
    data = pg.pack_masks(masks)
    assert len(data) == math.ceil((15 + 18) / 8)
    back = pg.unpack_masks(data, {k: v.shape for k, v in masks.items()})
    assert all(torch.equal(back[k], masks[k]) for k in masks)
    with pytest.raises(ValueError, match='bytes'): pg.unpack_masks(data + b'\x00', {k: v.shape for k, v in masks.items()})


@pytest.mark.parametrize('kind', ['binary', 'ternary'])
def test_export_import_exact(kind):
    X, y = _data((2, 6, 6))
    pb = pg.Piggyback(_cnn(), kind=kind)
    pb.add_task('a', 2)
    pg.train_task(pb, X, y, epochs=3, bs=16, lr_mask=1e-2, device='cpu')
    blob = pg.export_task(pb, 'a')
    n = sum(m.numel() for m in pg.masks_of(pb, 'a').values())
    assert len(blob['bits']) == math.ceil(n * (2 if kind == 'ternary' else 1) / 8)
    if kind == 'ternary': assert any((m < 0).any() for m in pg.masks_of(pb, 'a').values())
    fresh = pg.Piggyback(_cnn(), kind=kind)
    pg.import_task(fresh, 'a', blob)
    assert pg.same_state(pg.masks_of(fresh, 'a'), pg.masks_of(pb, 'a'))
    with torch.no_grad(): assert torch.equal(fresh.eval()(X), pb.eval()(X))


def test_switching_tasks_restores_outputs_exactly():
    X, y = _data((3, 4), k=3)
    base = _mlp()
    pb = pg.Piggyback(base)
    with torch.no_grad(): out0 = base(X)
    outs = {}
    for i, name in enumerate(['a', 'b', 'c']):
        pb.add_task(name, 3, seed=i)
        pg.train_task(pb, X, (y + i) % 3, epochs=3, bs=16, lr_mask=1e-2, seed=i, device='cpu')
        with torch.no_grad(): outs[name] = pb.eval()(X)
    assert not torch.equal(outs['a'], outs['b'])
    with torch.no_grad():
        for name in ['c', 'a', 'base', 'b', 'a']:
            got = pb.use(name).eval()(X)
            assert torch.equal(got, out0 if name == 'base' else outs[name]), name


@pytest.mark.parametrize('make,shape,kind', [(_mlp, (3, 4), 'binary'), (_cnn, (2, 6, 6), 'binary'),
                                             (_cnn, (2, 6, 6), 'ternary'), (lambda: _mlp(bn=True), (3, 4), 'binary')])
def test_merge_matches_live_model(make, shape, kind):
    X, y = _data(shape)
    pb = pg.Piggyback(make(), kind=kind)
    pb.add_task('a', 2)
    pg.train_task(pb, X, y, epochs=2, bs=16, lr_mask=1e-2, device='cpu')
    assert any((m == 0).any() for m in pg.masks_of(pb, 'a').values()), 'no weight switched off: nothing to merge'
    with torch.no_grad(): live = pb.use('a').eval()(X)
    plain = pg.merge(pb, 'a')
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in plain.modules())
    with torch.no_grad():
        assert torch.equal(plain(X), live)
        assert torch.equal(pb(X), live)          # the live model still works after merging, with the same outputs
        assert torch.equal(pg.merge(pb, 'base')(X), pb.use('base')(X))


def test_merge_uses_remove_parametrizations(monkeypatch):
    calls = []
    orig = torch.nn.utils.parametrize.remove_parametrizations
    def spy(module, name, leave_parametrized=True):
        calls.append((name, leave_parametrized))
        return orig(module, name, leave_parametrized=leave_parametrized)
    monkeypatch.setattr(pg.parametrize, 'remove_parametrizations', spy)
    pb = pg.Piggyback(_mlp())
    pb.add_task('a', 2)
    pg.merge(pb, 'a')
    assert calls == [('weight', True)] * len(pb.layer_names)


def test_bad_input_is_refused_by_name():
    X, y = _data((12,), n=40, k=4)
    toy = (X, y, X, y)
    with pytest.raises(ValueError, match='threshold=0'): pg.quantize(torch.ones(2), 0)
    with pytest.raises(ValueError, match=r'threshold=-0.001'): pg.Piggyback(_mlp(), threshold=-1e-3)
    with pytest.raises(ValueError, match=r'threshold=0.0'):
        pg.experiment(toy, base_classes=[0], new_classes=[1], thresholds=[0.0])
    with pytest.raises(ValueError, match='thresholds=.. is empty'):
        pg.experiment(toy, base_classes=[0], new_classes=[1], thresholds=[])
    with pytest.raises(ValueError, match='class 1 is in tasks'): pg.experiment(toy, base_classes=[0, 1], new_classes=[1, 2])
    with pytest.raises(ValueError, match='no Linear or Conv2d layers to mask'):
        pg.Piggyback(nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(12, 2)))
    pb = pg.Piggyback(_mlp())
    with pytest.raises(ValueError, match="task 'nope' is not known"): pb.use('nope')
    with pytest.raises(ValueError, match="task 'nope' is not known"): pg.merge(pb, 'nope')
    with pytest.raises(ValueError, match="task 'nope' is not known"): pg.export_task(pb, 'nope')
    with pytest.raises(ValueError, match="kind='octal'"): pg.Piggyback(_mlp(), kind='octal')
    with pytest.raises(ValueError, match="kind='octal'"): pg.experiment(toy, base_classes=[0], new_classes=[1], kind='octal')
    with pytest.raises(ValueError, match="method='lora'"): pg.experiment(toy, base_classes=[0], new_classes=[1], methods=['lora'])
    with pytest.raises(ValueError, match="images"): pg.experiment(toy, base_classes=[0], new_classes=[1], model='cnn')
    with pytest.raises(ValueError, match="model='nonet'"):
        pg.experiment((X.view(40, 3, 4), y, X.view(40, 3, 4), y), base_classes=[0], new_classes=[1], model='nonet')
    with pytest.raises(ValueError, match=r'n_train=41 must be an int in 1..40'):
        pg.experiment(toy, base_classes=[0], new_classes=[1], n_train=41)
    with pytest.raises(ValueError, match='epochs=0'): pg.experiment(toy, base_classes=[0], new_classes=[1], epochs=0)
    with pytest.raises(ValueError, match='lr_mask=-1'): pg.experiment(toy, base_classes=[0], new_classes=[1], lr_mask=-1)
    with pytest.raises(TypeError): pg.experiment(toy, [0], [1])     # everything after data is keyword-only


@pytest.mark.parametrize('shape,model', [((37,), 'mlp'), ((9, 11), 'cnn'), ((2, 5, 7), 'cnn'), ((1, 3, 3), 'mlp')])
def test_experiment_on_unseen_tensor_shapes(shape, model):
    g = torch.Generator().manual_seed(3)
    labels = torch.tensor([2, 5, 11, 13])          # sparse, non-contiguous class ids
    ytr, yte = labels[torch.randint(0, 4, (160,), generator=g)], labels[torch.randint(0, 4, (60,), generator=g)]
    data = (torch.rand(160, *shape, generator=g), ytr, torch.rand(60, *shape, generator=g), yte)
    r = pg.experiment(data, base_classes=[13, 2], new_classes=[5, 11], model=model, thresholds=[3e-3, 8e-3], epochs=1,
                      bs=32, seed=1)
    check_rows(r)
    assert r.col('method') == ['base', 'piggyback', 'piggyback', 'classifier', 'finetune', 'scratch', 'retrain']
    assert r.col('threshold') == [None, 3e-3, 8e-3, None, None, None, None]
    for row in r:
        assert 0 <= row['acc'] <= 1
    for row in r.where(method='piggyback'):
        assert row['acc_old_after'] == row['acc_old_before']
        assert row['bits_per_weight'] == 8 * math.ceil(row['n_masked'] / 8) / row['n_masked']
        assert row['state_bytes'] == math.ceil(row['n_masked'] / 8) + row['head_bytes']
    assert r.where(method='classifier')[0]['bits_per_weight'] == 0
    # bytes kept besides the deployed network: none for the base, a head for fine-tuning, both tasks' data to retrain
    assert r.where(method='base')[0]['state_bytes'] == 0
    assert r.where(method='finetune')[0]['state_bytes'] == r.where(method='finetune')[0]['head_bytes']
    assert r.where(method='retrain')[0]['state_bytes'] == 160 * math.prod(shape) * 4 + 160 * 8   # float32 images, int64 labels
    assert r.where(method='finetune')[0]['bits_per_weight'] == 32


def test_rows_roles_costs_and_curves():
    r = pg.experiment(_toy(), base_classes=[0, 1], new_classes=[2, 3], thresholds=(2e-3, 6e-3), epochs=2, bs=32)
    check_rows(r)
    assert r.meta['knob'] == 'threshold'
    roles = {row['method']: row['role'] for row in r}
    assert roles == {'base': 'setup', 'piggyback': 'adapt', 'classifier': 'baseline', 'finetune': 'baseline',
                     'scratch': 'baseline', 'retrain': 'retrain'}
    base, rt = r.where(method='base')[0], r.where(method='retrain')[0]
    X, y = _toy()[:2]
    nA, nB = int((y < 2).sum()), int((y >= 2).sum())
    assert base['examples'] == 2 * nA and base['acc'] == base['acc_old_before']
    assert rt['examples'] == 2 * (nA + nB)            # retraining pays for both tasks
    for row in r:
        if row['role'] == 'setup':
            assert 'curve_acc' not in row
            continue
        ex = row['curve_examples']
        assert ex[0] == 0 and ex == sorted(ex) and ex[-1] == row['examples'] == (2 * (nA + nB) if row['role'] == 'retrain' else 2 * nB)
        assert row['curve_acc'][-1] == row['acc']
    # adaptations start from the base network: the same new (untrained) head on the same frozen features
    starts = {row['method']: row['curve_acc'][0] for row in r if row['method'] in ('piggyback', 'classifier', 'finetune')}
    assert len(set(starts.values())) == 1


def test_same_seed_identical_results_and_ternary_bits():
    data = _toy()
    kw = dict(thresholds=[5e-3], epochs=2, bs=32, methods=('piggyback', 'finetune', 'retrain'), seed=4,
              base_classes=[0, 1], new_classes=[2, 3])
    a, b = pg.experiment(data, **kw), pg.experiment(data, **kw)
    assert a.stable() == b.stable()
    assert pg.experiment(data, **(kw | dict(seed=5))).stable() != a.stable()
    t = pg.experiment(data, kind='ternary', **kw).where(method='piggyback')[0]
    assert t['bits_per_weight'] == 8 * math.ceil(2 * t['n_masked'] / 8) / t['n_masked']


def test_threshold_sweep_and_retrain_only():
    data = _toy()
    kw = dict(epochs=1, bs=32, base_classes=[0, 1], new_classes=[2, 3])
    r = pg.experiment(data, thresholds=(1e-3, 5e-3, 9e-3), methods='piggyback', **kw)
    assert r.where(role='adapt').col('threshold') == [1e-3, 5e-3, 9e-3]
    assert pg.experiment(data, thresholds=7e-3, methods=('piggyback',), **kw).where(role='adapt').col('threshold') == [7e-3]
    only = pg.experiment(data, methods=('retrain',), **kw)
    assert only.col('method') == ['retrain'] and only[0]['threshold'] is None   # no base network needed


def test_torchvision_weights_policy(monkeypatch):
    import torchvision
    orig = torchvision.models.get_model
    def no_net(name, weights=None, **kw):
        if weights is not None: raise OSError('no network')
        return orig(name, weights=None, **kw)
    monkeypatch.setattr(torchvision.models, 'get_model', no_net)
    with pytest.raises(RuntimeError, match='could not be loaded'): pg.build_model('resnet18', (16, 16), 4)
    net = pg.build_model('resnet18', (16, 16), 4, weights=None)      # random init only when asked for
    with torch.no_grad(): assert net(torch.rand(2, 16, 16)).shape == (2, 4)
    pb = pg.Piggyback(net)
    assert len(pb.layer_names) > 10 and pb.head_name.endswith('fc')


def test_registered_for_the_cli():
    from adaptbook.cli import load_chapters
    e = load_chapters()['piggyback']
    assert e['experiment'] is pg.experiment and e['widget'] is pg.widget and e['figure'] is pg.figure


def test_experiment_with_a_torchvision_model():
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(64, 16, 16, generator=g), torch.randint(0, 4, (64,), generator=g),
            torch.rand(32, 16, 16, generator=g), torch.randint(0, 4, (32,), generator=g))
    r = pg.experiment(data, base_classes=[0, 1], new_classes=[2, 3], model='resnet18', weights=None, epochs=1, bs=32,
                      methods=('piggyback', 'classifier'))
    assert r.meta['weights'] is None and r.meta['model'] == 'resnet18'
    p = r.where(method='piggyback')[0]
    assert p['acc_old_after'] == p['acc_old_before'] and p['n_masked'] > 11_000_000


def test_figure_on_several_seeds():
    import matplotlib
    matplotlib.use('Agg')
    data = _toy()
    kw = dict(thresholds=(2e-3, 6e-3), epochs=1, bs=32, base_classes=[0, 1], new_classes=[2, 3])
    res = Results.merge(*[pg.experiment(data, seed=s, **kw) for s in range(3)])
    fig = pg.figure(res, 'toy')
    assert len(fig.axes) == 4 and fig.axes[0].get_xscale() == 'log'


def test_domain_shift_and_widget_reruns():
    g = torch.Generator().manual_seed(0)
    A = (torch.rand(40, 5, 5, generator=g), torch.randint(0, 3, (40,), generator=g), torch.rand(20, 5, 5), torch.randint(0, 3, (20,)))
    B = (torch.rand(30, 5, 5, generator=g), torch.randint(0, 2, (30,), generator=g), torch.rand(10, 5, 5), torch.randint(0, 2, (10,)))
    Xtr, ytr, Xte, yte = pg.domain_shift(A, B, n_train=40)
    assert len(Xtr) == 40 and set(ytr.tolist()) <= {0, 1, 2, 3, 4} and (ytr >= 3).any() and len(Xte) == 30
    with pytest.raises(ValueError, match='must match'):
        pg.domain_shift(A, (torch.rand(30, 4, 4),) + B[1:2] + (torch.rand(10, 4, 4),) + B[3:])
    with pytest.raises(ValueError, match='n_train=31'): pg.domain_shift(A, B, n_train=62)
    ex = pg.widget((Xtr, ytr, Xte, yte), thresholds=(2e-3, 6e-3), value=6e-3, base_classes=[0, 1, 2],
                   new_classes=[3, 4], n_train=40, n_test=30, epochs=1)
    first = ex.png
    ex.set(threshold=2e-3)                        # a new value: Piggyback reruns, the figure changes
    assert ex.png != first and len(ex.cache) == 2
    assert ex.result(threshold=2e-3).where(method='piggyback')[0]['threshold'] == 2e-3
    with pytest.raises(ValueError, match='value=0.005'): pg.widget((Xtr, ytr, Xte, yte), thresholds=(2e-3,))
