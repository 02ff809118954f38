"""Piggyback: frozen backbone, exact mask round trips, exact task switching, merge, bad input, the experiment contract,
the zoo starting point, the ImageNet input path and the chapter's acceptance criteria."""
import json
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
    monkeypatch.setattr(torch.nn.utils.parametrize, 'remove_parametrizations', spy)
    pb = pg.Piggyback(_mlp())
    pb.add_task('a', 2)
    pg.merge(pb, 'a')
    assert calls == [('weight', True)] * len(pb.layer_names)


def _backbone(shape=(4, 4), k=3):
    "A tiny trained-looking network for `shape` inputs: what `backbone=` takes besides the zoo and torchvision."
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, k))


FAST = dict(n_labels=50, n_test=None, epochs=2, bs=16, lr_head=1e-2, lr_classifier=1e-2, lr_finetune=1e-3,
            lr_scratch=1e-3, lr_mask=1e-2)


def _run(data=None, **kw):
    data = _toy() if data is None else data
    return pg.experiment(data, **(dict(tasks=[[0, 1], [2, 3]], backbone=_backbone()) | FAST | kw))


def test_bad_input_is_refused_by_name():
    X, y = _data((12,), n=40, k=4)
    toy = (X, y, X, y)
    kw = dict(backbone=_backbone((12,)), n_labels=5, epochs=1)
    with pytest.raises(ValueError, match='threshold=0'): pg.quantize(torch.ones(2), 0)
    with pytest.raises(ValueError, match=r'threshold=-0.001'): pg.Piggyback(_mlp(), threshold=-1e-3)
    with pytest.raises(ValueError, match=r'threshold=0.0'): pg.experiment(toy, tasks=[[0], [1]], thresholds=[0.0], **kw)
    with pytest.raises(ValueError, match='thresholds=.. is empty'): pg.experiment(toy, tasks=[[0], [1]], thresholds=[], **kw)
    with pytest.raises(ValueError, match='class 1 is in tasks'): pg.experiment(toy, tasks=[[0, 1], [1, 2]], **kw)
    with pytest.raises(ValueError, match='at least 2 tasks'): pg.experiment(toy, tasks=[[0, 1]], **kw)
    with pytest.raises(ValueError, match='no Linear or Conv2d layers to mask'):
        pg.Piggyback(nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(12, 2)))
    pb = pg.Piggyback(_mlp())
    with pytest.raises(ValueError, match="task 'nope' is not known"): pb.use('nope')
    with pytest.raises(ValueError, match="task 'nope' is not known"): pg.merge(pb, 'nope')
    with pytest.raises(ValueError, match="task 'nope' is not known"): pg.export_task(pb, 'nope')
    with pytest.raises(ValueError, match="kind='octal'"): pg.Piggyback(_mlp(), kind='octal')
    with pytest.raises(ValueError, match="kind='octal'"): pg.experiment(toy, tasks=[[0], [1]], kind='octal', **kw)
    with pytest.raises(ValueError, match="methods='lora'"): pg.experiment(toy, tasks=[[0], [1]], methods=['lora'], **kw)
    with pytest.raises(ValueError, match="backbone='nonet'"): pg.experiment(toy, tasks=[[0], [1]], **(kw | dict(backbone='nonet')))
    with pytest.raises(TypeError, match='backbone must be'): pg.experiment(toy, tasks=[[0], [1]], **(kw | dict(backbone=3)))
    with pytest.raises(ValueError, match=r'n_labels=41 must be an int in 1\.\.'):
        pg.experiment(toy, tasks=[[0, 1], [2, 3]], **(kw | dict(n_labels=41)))
    with pytest.raises(ValueError, match='epochs=0'): pg.experiment(toy, tasks=[[0], [1]], **(kw | dict(epochs=0)))
    with pytest.raises(ValueError, match='lr_mask=-1'): pg.experiment(toy, tasks=[[0], [1]], lr_mask=-1, **kw)
    with pytest.raises(ValueError, match='lr_finetune=0'): pg.experiment(toy, tasks=[[0], [1]], lr_finetune=(1e-3, 0), **kw)
    with pytest.raises(TypeError, match="'epoch' is not an option of PiggybackSettings"):
        pg.experiment(toy, tasks=[[0], [1]], epoch=1)                # a misspelt option is refused, by name
    with pytest.raises(TypeError, match='settings must be a PiggybackSettings'): pg.experiment(toy, settings=dict(epochs=1))
    with pytest.raises(TypeError): pg.experiment(toy, [[0], [1]])     # everything after data is keyword-only


def test_settings_typed_and_options_on_top():
    s = pg.PiggybackSettings.for_mode('quick')
    assert s.n_labels == 1000 and s.backbone == pg.ZOO_NAME and s.epochs >= 5
    full = pg.PiggybackSettings.for_mode('full')
    assert full.backbone == 'resnet18' and full.epochs > s.epochs           # full mode: ImageNet, longer
    mine = pg.PiggybackSettings(tasks=((0, 1), (2, 3)), backbone=_backbone(), **FAST)
    a = pg.experiment(_toy(), settings=mine, methods=('piggyback',))
    b = pg.experiment(_toy(), settings=mine, methods=('piggyback',), epochs=1)    # an option on top of settings
    assert a.meta['epochs'] == 2 and b.meta['epochs'] == 1 and a.meta['backbone'] == 'Sequential'
    assert a.stable() != b.stable()


@pytest.mark.parametrize('shape', [(37,), (9, 11), (2, 5, 7)])
def test_experiment_rows_on_any_backbone(shape):
    g = torch.Generator().manual_seed(3)
    labels = torch.tensor([2, 5, 11, 13])          # sparse, non-contiguous class ids
    ytr, yte = labels[torch.randint(0, 4, (160,), generator=g)], labels[torch.randint(0, 4, (60,), generator=g)]
    data = (torch.rand(160, *shape, generator=g), ytr, torch.rand(60, *shape, generator=g), yte)
    r = _run(data, tasks=[[13, 2], [5, 11]], backbone=_backbone(shape), thresholds=[3e-3, 8e-3], seed=1)
    check_rows(r)
    assert r.col('method') == ['base', 'piggyback', 'piggyback', 'classifier', 'finetune', 'scratch', 'individual']
    assert r.col('role') == ['setup', 'adapt', 'adapt', 'baseline', 'baseline', 'retrain', 'baseline']
    assert r.col('threshold') == [None, 3e-3, 8e-3, None, None, None, None]
    for row in [row for row in r if row['method'] in ('piggyback', 'classifier', 'individual')]:
        assert row['old_identical'] and row['acc_old_after'] == row['acc_old_before']
        assert len(row['acc_tasks']) == 2 and row['acc'] == pytest.approx(sum(row['acc_tasks']) / 2)
    n = r[0]['n_masked']
    assert n == math.prod(shape) * 16 + 16 * 16                   # every weight of the body, not the head
    for row in r.where(method='piggyback'):
        assert row['bits_per_weight'] == 8 * math.ceil(n / 8) / n <= 1 + 8 / n
        heads = row['state_bytes'] - 2 * math.ceil(n / 8)          # two packed masks, then two heads
        assert heads == 2 * (16 * 2 + 2) * 4
    assert r.where(method='classifier')[0]['bits_per_weight'] == 0
    assert r.where(method='scratch')[0]['state_bytes'] == 2 * sum(p.numel() for p in _backbone(shape)[:-1].parameters()) * 4 + 2 * (16 * 2 + 2) * 4
    # the paper's reference: a fine-tuned copy per task keeps a whole network per task, 32 bits a weight
    ind = r.where(method='individual')[0]
    assert ind['bits_per_weight'] == 32 and ind['state_bytes'] == r.where(method='scratch')[0]['state_bytes']


def test_costs_curves_and_tuning_on_validation():
    r = _run(thresholds=(2e-3, 6e-3), lr_scratch=(1e-3, 3e-2), lr_classifier=(1e-3, 1e-2, 1e-1))
    check_rows(r)
    X, y = _toy()[:2]
    for row in r:
        if row['role'] == 'setup':
            assert 'curve_acc' not in row
            continue
        ex = row['curve_examples']
        n_train = 50 - 10                                             # 50 labels per task, a fifth for validation
        assert ex[0] == 0 and ex == sorted(ex) and ex[-1] == row['examples'] == 2 * 2 * n_train   # 2 tasks, 2 epochs
        assert row['curve_acc'][-1] == pytest.approx(row['acc'])
        grid = {'piggyback': 1, 'classifier': 3, 'finetune': 1, 'scratch': 2, 'individual': 2}[row['method']]
        assert len(row['val_accs']) == grid and row['tune_examples'] == (grid - 1) * 2 * n_train
        assert row['val_acc'] == max(row['val_accs'].values()) and row['val_accs'][str(row['lr'])] == row['val_acc']
    sc, pig = r.where(method='scratch')[0], r.where(method='piggyback')[0]
    assert pig['examples'] == sc['examples']          # each task trained alone: the same examples as the reference
    # adaptations start from the frozen backbone: the same new (untrained) head on the same features
    starts = {row['method']: row['curve_acc'][0] for row in r if row['method'] in ('piggyback', 'classifier', 'finetune', 'individual')}
    assert len(set(starts.values())) == 1


def test_same_seed_identical_results_and_ternary_bits():
    kw = dict(methods=('piggyback', 'finetune'), seed=4)
    same = lambda r: json.dumps(r.stable(), sort_keys=True)          # NaN (the base row's unknown accuracy) as text
    a, b = _run(**kw), _run(**kw)
    assert same(a) == same(b)
    assert same(_run(**(kw | dict(seed=5)))) != same(a)
    t = _run(kind='ternary', **kw).where(method='piggyback')[0]
    assert t['bits_per_weight'] == 8 * math.ceil(2 * t['n_masked'] / 8) / t['n_masked']


def test_threshold_sweep_and_scratch_only():
    r = _run(thresholds=(1e-3, 5e-3, 9e-3), methods='piggyback')
    assert r.where(role='adapt').col('threshold') == [1e-3, 5e-3, 9e-3]
    only = _run(methods=('scratch',))
    assert only.col('method') == ['scratch'] and only[0]['threshold'] is None   # no frozen backbone needed


def test_zoo_starting_point_is_shipped_and_frozen():
    from adaptbook import zoo
    rec = zoo.record(pg.ZOO_NAME, 0, 'quick')
    assert rec is not None and rec['where'] == str(zoo.shipped_dir()), 'the quick weights must ship with the package'
    pt = zoo.shipped_dir() / f"{pg.ZOO_NAME}-quick-s0-{zoo.get(pg.ZOO_NAME).signature('quick')}.pt"
    assert pt.stat().st_size < 1_000_000 and rec['bytes'] == pt.stat().st_size
    assert 'Fashion-MNIST' in rec['source'] and 'Omniglot' in rec['source'] and 0.8 < rec['acc'] <= 1
    net = pg.starting_point()
    with torch.no_grad(): assert net(torch.rand(3, 28, 28)).shape == (3, 974)
    fresh = pg.starting_point(pretrained=False, seed=1)
    assert not torch.equal(fresh[-1].weight, net[-1].weight)


def test_imagenet_input_path_with_random_weights(monkeypatch):
    import torchvision
    from adaptbook import zoo
    tf = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    x = torch.rand(2, 28, 28)
    z = pg.ImageNetInput(tf)(x)
    assert z.shape == (2, 3, 224, 224)
    by_hand = torch.nn.functional.interpolate(x[:, None], size=(256, 256), mode='bilinear', antialias=True,
                                              align_corners=False)[..., 16:240, 16:240]
    mean, std = torch.tensor(tf.mean)[:, None, None], torch.tensor(tf.std)[:, None, None]
    torch.testing.assert_close(z, (by_hand.expand(-1, 3, -1, -1) - mean) / std, atol=1e-4, rtol=1e-4)
    assert torch.equal(pg.ImageNetInput(tf)(x[:, None]), z)                      # N×1×H×W: the same
    with pytest.raises(ValueError, match='ImageNetInput needs images'): pg.ImageNetInput(tf)(torch.rand(2, 2, 5, 5))
    # the pretrained path, with random weights standing in for ImageNet's (none are downloaded in tests)
    monkeypatch.setattr(zoo, 'imagenet', lambda name: (torchvision.models.get_model(name, weights=None).eval(), None))
    net = pg.starting_point('resnet18')
    assert isinstance(net[0], pg.ImageNetInput) and isinstance(net[1], torchvision.models.ResNet)
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(40, 28, 28, generator=g), torch.arange(40) % 4, torch.rand(8, 28, 28, generator=g), torch.arange(8) % 4)
    r = pg.experiment(data, backbone='resnet18', tasks=[[0, 1], [2, 3]], n_labels=10, epochs=1, bs=8,
                      methods=('piggyback',), lr_head=1e-2)
    p = r.where(method='piggyback')[0]
    assert p['old_identical'] and p['n_masked'] > 11_000_000 and r.meta['backbone'] == 'resnet18'


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


def test_no_own_training_step():
    "#23: every training loop goes through core.fit / core.train_step (no zero_grad, backward or step of its own)."
    import inspect
    src = inspect.getsource(pg)
    for call in ('.zero_grad(', '.backward(', '.step('):
        assert call not in src.replace('curve.step(', ''), call


def test_figure_on_several_seeds():
    import matplotlib
    matplotlib.use('Agg')
    res = Results.merge(*[_run(thresholds=(2e-3, 6e-3), epochs=1, seed=s) for s in range(3)])
    fig = pg.figure(res, 'toy')
    assert len(fig.axes) == 4 and fig.axes[0].get_xscale() == 'log'


def test_widget_reruns():
    ex = pg.widget(_toy(), thresholds=(2e-3, 6e-3), value=6e-3, tasks=[[0, 1], [2, 3]], backbone=_backbone(),
                   n_labels=40, n_test=None, epochs=1)
    first = ex.png
    ex.set(threshold=2e-3)                        # a new value: Piggyback reruns, the figure changes
    assert ex.png != first and len(ex.cache) == 2
    assert ex.result(threshold=2e-3).where(method='piggyback')[0]['threshold'] == 2e-3
    with pytest.raises(ValueError, match='value=0.005'): pg.widget(_toy(), thresholds=(2e-3,))


@pytest.fixture(scope='module')
def contrast():
    """The chapter's MNIST contrast (`run()`: the zoo backbone, MNIST 0-4 then 5-9, 1,000 labels per task, three
    seeds), averaged over seeds; read from the results cache when the notebook has run, else computed (minutes)."""
    return pg.run().mean()


@pytest.mark.xfail(reason='measured (3 seeds, 1,000 labels per task): on MNIST 0-4/5-9 Piggyback is below training from '
                          'scratch and less than 5 points above the head alone; on 2 x 67 unseen Omniglot characters '
                          'it beats scratch but stays below the head alone; see the chapter and the report',
                   strict=True)   # strict: the day it holds, this fails, and it becomes a plain test
def test_acceptance_piggyback_beats_scratch_and_head(contrast):
    rows = {r['method']: r for r in contrast}
    pig, sc, cl = rows['piggyback'], rows['scratch'], rows['classifier']
    assert pig['acc'] >= sc['acc'], f"piggyback {pig['acc']:.4f} < scratch {sc['acc']:.4f} with 1,000 labels per task"
    assert pig['acc'] >= cl['acc'] + 0.05, f"piggyback {pig['acc']:.4f} < head only {cl['acc']:.4f} + 5 pt"


def test_acceptance_old_task_identical_and_one_bit(contrast):
    pig = contrast.where(method='piggyback')[0]
    assert pig['old_identical'] == 1 and pig['acc_old_after'] == pig['acc_old_before']
    assert pig['bits_per_weight'] <= 1.0
    assert contrast.where(method='finetune')[0]['acc_old_after'] < contrast.where(method='finetune')[0]['acc_old_before']


def test_unseen_characters_split_and_tasks():
    "The second target: Omniglot's evaluation alphabets, drawers 0-14 to draw labels from, 15-19 for test."
    from adaptbook.data import DatasetNotFound
    try: X, y, Xt, yt = pg.omniglot_unseen()
    except DatasetNotFound: pytest.skip('Omniglot is not on this machine')
    assert X.shape[1:] == (28, 28) and len(X) == 659 * 15 and len(Xt) == 659 * 5
    assert torch.equal(torch.bincount(y), torch.full((659,), 15)) and torch.equal(torch.bincount(yt), torch.full((659,), 5))
    tasks = pg.unseen_tasks(67)
    assert len(tasks) == 2 and all(len(t) == 67 for t in tasks) and not set(tasks[0]) & set(tasks[1])
    assert pg.unseen_tasks(67) == tasks and pg.unseen_tasks(67, seed=1) != tasks
    with pytest.raises(ValueError, match='n_classes=400'): pg.unseen_tasks(400)
    s = pg.PiggybackSettings(tasks=tasks, n_labels=1000, n_test=None)
    T = pg._tasks(pg.UNSEEN, s, torch.Generator().manual_seed(0))
    for t in T:
        assert len(t.X) + len(t.Xv) == 1000 and len(t.Xt) == 67 * 5 and set(t.yt.tolist()) == set(range(67))
        assert not any(torch.equal(a, b) for a in t.Xt[:20] for b in t.X)      # test drawings are not training ones


def test_the_fine_tuned_copy_reuses_the_shared_fine_tunes_first_task_bit_for_bit():
    """'individual' (a fine-tuned copy per task) starts its first task exactly as 'finetune' does, so it reuses that
    run (model, cost, curve) when both are learned: its row is the same as when it is learned alone (#31: the notebook's
    time)."""
    g = torch.Generator().manual_seed(3)
    X, y = torch.rand(200, 12, generator=g), torch.randint(0, 4, (200,), generator=g)
    kw = dict(tasks=[[0, 1], [2, 3]], backbone=_backbone((12,)), n_labels=50, n_test=None, epochs=2, bs=16)
    both = pg.experiment((X, y, X, y), methods=('finetune', 'individual'), **kw).where(method='individual')[0]
    alone = pg.experiment((X, y, X, y), methods=('individual',), **kw)[-1]
    for k in ('acc', 'acc_tasks', 'lr', 'val_accs', 'examples', 'tune_examples', 'curve_acc', 'curve_examples',
              'acc_old_before', 'acc_old_after', 'state_bytes'):
        assert both[k] == alone[k], k
    other = pg.experiment((X, y, X, y), methods=('finetune', 'individual'), lr_individual=(1e-2,), **kw)
    assert other.where(method='individual')[0]['lr'] == 1e-2          # another grid: trained, not reused


def test_digits_backbone_is_shipped_and_never_saw_clothes():
    from adaptbook import zoo
    rec = zoo.record(pg.DIGITS_ZOO, 0, 'quick')
    assert rec is not None and rec['where'] == str(zoo.shipped_dir()), 'the quick weights must ship with the package'
    assert 'MNIST' in rec['source'] and 'Omniglot' in rec['source'] and 'no clothes' in rec['source']
    assert rec['code'] == zoo.get(pg.DIGITS_ZOO).code() and 0.9 < rec['acc'] <= 1     # held out: MNIST's test split
    X, y, Xh, yh = pg.digits_source()
    assert X.shape == (79_280, 28, 28) and int(y.max()) == 973 and len(Xh) == 10_000
    with torch.no_grad(): assert pg.starting_point(pg.DIGITS_ZOO)(torch.rand(2, 28, 28)).shape == (2, 974)


def test_clothes_target_splits_each_class_of_the_packed_test_split():
    from adaptbook.data import load
    X, y, Xt, yt = pg.clothes_target()
    assert (X.shape, Xt.shape) == ((6000, 28, 28), (4000, 28, 28))
    assert y.bincount().tolist() == [600] * 10 and yt.bincount().tolist() == [400] * 10
    d = load('fashion-mnist', split='test')
    first = d.X[d.y == 3]
    assert torch.equal(X[y == 3], first[:600]) and torch.equal(Xt[yt == 3], first[600:])     # file order, disjoint
    assert torch.equal(pg._resolve(pg.CLOTHES)[0], X)
    for bad in (0, 1000):
        with pytest.raises(ValueError, match=f'pool={bad}'): pg.clothes_target(bad)


def test_budget_epochs_keeps_the_gradient_steps_of_the_whole_pool():
    e = pg.PiggybackSettings.for_mode('quick').epochs
    assert pg.budget_epochs(None, 'quick') == e and pg.budget_epochs(3000, 'quick') == e
    assert pg.budget_epochs(100, 'quick') == 30 * e and pg.budget_epochs(1000, 'quick') == 3 * e
    for bad in (1, 3001):
        with pytest.raises(ValueError, match=f'n_labels={bad}'): pg.budget_epochs(bad, 'quick')


def test_clothes_sweep_labels_each_budget(monkeypatch):
    calls = []
    def fake(data, mode, seed, **kw):
        calls.append((data, kw['n_labels'], kw['epochs'], kw['backbone']))
        r = Results(meta={'seed': seed})
        r.add(method='piggyback', role='adapt', acc=0.5, seed=seed)
        return r
    monkeypatch.setattr(pg, '_three_seeds', fake)
    res = pg.clothes_sweep((100, None), mode='quick')
    assert [c[:2] for c in calls] == [(pg.CLOTHES, 100), (pg.CLOTHES, None)]
    assert [c[2] for c in calls] == [pg.budget_epochs(100, 'quick'), pg.budget_epochs(None, 'quick')]
    assert {c[3] for c in calls} == {pg.DIGITS_ZOO} and res.col('n_labels') == [100, 3000]


def test_measured_clothes_holds_the_headline_claim_and_says_whose_code_measured_it(tmp_path):
    res = pg.measured_clothes()                                        # the package's own measurement
    assert sorted({r['n_labels'] for r in res}) == [100, 300, 1000, 3000] and 'provenance' in res.meta
    head = res.where(n_labels=3000)
    acc = {m: {r['seed']: r['acc'] for r in head.where(method=m)} for m in pg.CLOTHES_METHODS}
    assert sorted(acc['piggyback']) == [0, 1, 2]
    gain = [acc['piggyback'][s] - acc['classifier'][s] for s in range(3)]
    assert sum(gain) / 3 >= 0.05, f'masks over the head alone: {gain}'                 # the criterion
    assert sum(acc['piggyback'][s] - acc['individual'][s] for s in range(3)) / 3 >= -0.03
    assert all(r['old_identical'] and r['bits_per_weight'] <= 1 for r in res.where(method='piggyback'))
    other = tmp_path / 'other.json'
    other.write_text(Results(head.rows, {**head.meta, 'code': 'feedface'}).to_json())
    assert pg.measured_clothes(other).meta['current'] is False
    with pytest.raises(FileNotFoundError, match='bench/piggyback_clothes.py'):
        pg.measured_clothes(tmp_path / 'missing.json')
    bad = tmp_path / 'bad.json'
    bad.write_text(Results([{'method': 'piggyback', 'acc': 0.5}]).to_json())
    with pytest.raises(ValueError, match='every row needs n_labels'): pg.measured_clothes(bad)


def test_measured_width_reads_pairs_and_plots(tmp_path):
    import matplotlib
    matplotlib.use('Agg')
    from adaptbook.core import figure_problems
    res = pg.measured_width()                                          # the package's own measurement
    g = pg.width_gaps(res)
    assert [r['widths'] for r in g] == ['8,16,64', '16,32,128', '32,64,256']
    assert [r['n_masked'] for r in g] == sorted(r['n_masked'] for r in g) and all(len(r['copies']) == 2 for r in g)
    r = g[0]
    pb = {x['seed']: x['acc'] for x in res.where(widths=r['widths'], method='piggyback')}
    cl = {x['seed']: x['acc'] for x in res.where(widths=r['widths'], method='classifier')}
    assert r['head'] == pytest.approx([100 * (pb[s] - cl[s]) for s in sorted(pb)])
    assert figure_problems(pg.plot_width(res).figure) == []
    with pytest.raises(FileNotFoundError, match='bench/piggyback_width.py'): pg.measured_width(tmp_path / 'no.json')
    bad = tmp_path / 'bad.json'
    bad.write_text(Results([{'method': 'piggyback', 'acc': 0.5}]).to_json())
    with pytest.raises(ValueError, match='every row needs widths'): pg.measured_width(bad)
    with pytest.raises(ValueError, match="name='x'"): pg.measured_file('x')


def test_measured_files_and_their_plots_refuse_what_they_cannot_read(tmp_path):
    with pytest.raises(ValueError, match='is a folder'): pg.measured_clothes(tmp_path)
    with pytest.raises(TypeError, match='path must be a file path'): pg.measured_clothes(123)
    f = tmp_path / 'f.json'
    for text, msg in (('', 'is not JSON'), ('[1, 2]', "object with 'rows'"), ('{"rows": []}', 'no rows'),
                      ('{"rows": [{"n_labels": 100}]}', 'every row needs n_labels, method'),
                      ('{"rows": [{"n_labels": "abc", "method": "piggyback", "role": "adapt", "acc": 0.5, "seed": 0}], '
                       '"meta": {"code": "x", "provenance": {}, "seconds": 1}}', 'n_labels an int'),
                      ('{"rows": [{"n_labels": 100, "method": "piggyback", "role": "adapt", "acc": 0.5, "seed": 0}]}',
                       'meta needs code, provenance, seconds')):
        f.write_text(text)
        with pytest.raises(ValueError, match=msg): pg.measured_clothes(f)
    with pytest.raises(ValueError, match='int n_labels'): pg.plot_budgets(Results())
    with pytest.raises(ValueError, match='int n_labels'): pg.plot_budgets(pg.measured_width())
    with pytest.raises(ValueError, match='no rows with widths'): pg.plot_width(pg.measured_clothes())
    gapped = Results([r for r in pg.measured_width() if not (r['method'] == 'individual' and r['seed'] == 1)])
    with pytest.raises(ValueError, match='individual has seeds'): pg.width_gaps(gapped)
    with pytest.raises(ValueError, match='pool=0'): pg.budget_epochs(100, 'quick', pool=0)


def test_headline_reads_the_shipped_rows_only_when_this_code_measured_them(tmp_path, monkeypatch):
    "The registered run (`adaptbook run piggyback`, the comparison chapter) is the clothes headline, read or computed."
    from adaptbook.core import EXPERIMENTS, load_chapters, run_digest
    load_chapters()
    assert EXPERIMENTS['piggyback']['run'] is pg.headline
    sweep = pg.measured_clothes()
    (tmp_path / 'measured').mkdir()
    (tmp_path / 'piggyback.py').touch()                          # read_measured checks the chapter is a module there
    monkeypatch.setattr(pg.zoo, 'measured_dir', lambda: tmp_path / 'measured')
    mine = tmp_path / 'measured' / 'piggyback_clothes.json'
    ours = {**sweep.meta, 'code': run_digest('piggyback'), 'backbone_sha256': pg.digits_sha256()}
    write = lambda rows, **meta: mine.write_text(Results(rows, {**ours, **meta}).to_json())
    write(sweep.rows)
    calls = []
    monkeypatch.setattr(pg, 'run_clothes', lambda mode=None, seed=0: calls.append((mode, seed)) or
                        Results([{'method': 'piggyback', 'seed': seed, 'acc': 0.5}], {'provenance': {}}))
    res = pg.headline('quick')
    assert calls == [] and res.meta['measured'] == str(mine) and res.meta['measured_seeds'] == [0, 1, 2]
    assert {r['n_labels'] for r in res} == {3000} and sorted({r['seed'] for r in res}) == [0, 1, 2]
    assert len(res) == len(sweep.where(n_labels=3000)) and res.meta['epochs'] == pg.budget_epochs(None, 'quick')
    work = sum(r['seconds'] for r in res if r['role'] != 'setup')     # the setup row is the zoo's pre-training
    assert res.meta['provenance']['seconds'] == pytest.approx(work) and work < sum(r['seconds'] for r in res)
    assert res.meta['provenance']['run_digest'] == run_digest('piggyback')
    assert pg.headline('quick', seed=1).meta['measured'] is None and calls == [('quick', 1)]   # other seeds: computed
    assert pg.headline('full').meta['measured'] is None and calls[-1] == ('full', 0)           # full mode: computed
    for bad in (-1, 0.0, False, '0'):
        with pytest.raises(ValueError, match=f"seed={bad!r}"): pg.headline('quick', seed=bad)
    assert len(calls) == 2
    # shipped rows that cannot serve: computed, with a warning that says why
    for rows, meta, why in ((sweep.rows, {'code': 'feedface'}, 'other Piggyback code or on other weights'),
                            (sweep.rows, {'backbone_sha256': '0' * 64}, 'other weights of the backbone'),
                            (sweep.where(n_labels=100).rows, {}, 'no rows at 3,000 labels'),
                            ([{k: v for k, v in r.items() if k != 'seconds'} for r in sweep], {}, 'without their seconds')):
        write(rows, **meta)
        with pytest.warns(UserWarning, match=why):
            assert pg.headline('quick').meta['measured'] is None and calls[-1] == ('quick', 0)
    mine.write_text('{"rows": [')
    with pytest.warns(UserWarning, match='is not JSON|not a measurement'): pg.headline('quick')
    mine.unlink()
    with pytest.warns(UserWarning, match='is missing: measure it with'): pg.headline('quick')
    assert len(calls) == 8


def test_adaptbook_run_says_the_headline_was_read_not_computed(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use('Agg')
    from adaptbook import cli
    from adaptbook.core import run_digest
    sweep = pg.measured_clothes()
    mine = tmp_path / 'piggyback_clothes.json'
    mine.write_text(Results(sweep.rows, {**sweep.meta, 'code': run_digest('piggyback'),
                                         'backbone_sha256': pg.digits_sha256()}).to_json())
    monkeypatch.setattr(pg, 'measured_file', lambda name='clothes': mine)
    monkeypatch.setattr(pg, 'measured_clothes', lambda path=None: pg._measured('clothes', mine))
    paths = cli.run_experiment('piggyback', out=tmp_path / 'out', verbose=False)
    head = paths['md'].read_text().splitlines()[0]
    assert head.startswith('# piggyback (quick mode, seeds [0, 1, 2], read from piggyback_clothes.json'), head
