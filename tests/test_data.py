import os
import numpy as np
import pytest
import torch
from adaptbook import data
from adaptbook.data import load, resolve, check_tasks, split_classes, stream, add_split, remove_split, episode

# --- the real datasets, from the shared folder (the "done when" sizes) ---

@pytest.mark.parametrize('name,split,n,shape', [
    ('mnist', 'train', 60_000, (28, 28)), ('mnist', 'test', 10_000, (28, 28)),
    ('fashion-mnist', 'test', 10_000, (28, 28)), ('usps', 'train', 7_291, (16, 16)), ('usps', 'test', 2_007, (16, 16)),
    ('a7a', 'train', 16_100, (123,)), ('a7a', 'test', 16_461, (123,))])
def test_real_datasets(shared_data, monkeypatch, name, split, n, shape):
    monkeypatch.setenv('ADAPTBOOK_DATA', shared_data)
    X, y = load(name, split)
    assert X.shape == (n, *shape) and y.shape == (n,)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= X.min() and X.max() <= 1
    assert y.min() == 0 and y.max() == (1 if name == 'a7a' else 9)

def test_mnist_class_counts(shared_data):
    _, y = load('mnist', 'train', root=shared_data)
    assert y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

def test_omniglot(shared_data):
    d = load('omniglot', 'background', root=shared_data)
    assert d.X.shape == (19_280, 28, 28) and d.y.max() == 963 and len(d.alphabets) == 30
    assert d.char_id.min() == 1 and d.drawer.max() == 19
    assert d.X.mean() < 0.5                       # ink is bright and sparse
    e = load('omniglot', 'evaluation', root=shared_data, size=105)
    assert e.X.shape == (13_180, 105, 105) and e.char_id.min() == 965 and len(e.alphabets) == 20
    with pytest.raises(ValueError, match='size=0'):
        load('omniglot', 'background', root=shared_data, size=0)

def test_empty_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path))
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    X, y = load('digits')                          # embedded: no files needed
    assert X.shape == (1437, 8, 8)
    with pytest.raises(data.DatasetNotFound) as e:
        load('mnist')
    msg = str(e.value)
    assert str(tmp_path) in msg and str(tmp_path / 'cache') in msg and 'ADAPTBOOK_DATA' in msg
    assert 'train-images-idx3-ubyte.gz' in msg and 'fetch' in msg

def test_root_comes_first(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path))
    from pathlib import Path
    assert data.places(shared_data)[0] == Path(shared_data).resolve()
    assert len(load('usps', root=shared_data)) == 7291

def test_corrupt_file_named(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    (tmp_path / 'a7a').mkdir()
    (tmp_path / 'a7a' / 'a7a').write_bytes(open(os.path.join(shared_data, 'a7a', 'a7a'), 'rb').read()[:-10])
    (tmp_path / 'a7a' / 'a7a.t').write_bytes(open(os.path.join(shared_data, 'a7a', 'a7a.t'), 'rb').read())
    with pytest.raises(data.ChecksumError) as e:
        load('a7a', root=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / 'a7a' / 'a7a') in msg and data.DATASETS['a7a'].files['a7a'] in msg

def test_download_refused_without_address(monkeypatch):
    # every registered dataset with files can now be fetched (USPS and Omniglot through torchvision, then converted):
    # a dataset registered with files but no address is still refused, by name
    a7a = data.spec('a7a')
    monkeypatch.setitem(data.DATASETS, 'local-only', data.Spec('local-only', {'x.bin': '0' * 64}, ('train', 'test'),
                                                               a7a.reader, 'a local-only set'))
    with pytest.raises(ValueError, match="'local-only' has no public download address"):
        data.fetch('local-only')

# --- names, splits and tensors ---

def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match='known datasets: a7a, blobs, digits, fashion-mnist, mnist, omniglot, usps'):
        load('cifar10')

def test_unknown_split():
    with pytest.raises(ValueError, match=r"split='val' is not a split of 'digits'"):
        load('digits', 'val')
    with pytest.raises(ValueError, match="split='train'"):
        load('omniglot', 'train')

def test_digits_and_blobs():
    Xtr, ytr, Xte, yte = resolve('digits')
    assert len(Xtr) + len(Xte) == 1797 and set(ytr.tolist()) == set(range(10))
    a, b = load('blobs', 'train', seed=3), load('blobs', 'test', seed=3)
    assert torch.equal(a.centres, b.centres) and not torch.equal(a.X, b.X)
    assert torch.equal(a.X, load('blobs', 'train', seed=3).X)
    d = torch.cdist(a.X, a.centres).argmin(1)
    assert (d == a.y).float().mean() > 0.99           # each point sits by its own centre
    with pytest.raises(ValueError, match='n_classes=1'):
        load('blobs', n_classes=1)

def test_resolve_tensors():
    X, y = np.random.rand(20, 7), np.arange(20) % 4
    Xtr, ytr, Xte, yte = resolve((X, y, torch.rand(5, 7), torch.tensor([0., 1, 2, 3, 3])))
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64 and yte.tolist() == [0, 1, 2, 3, 3]
    with pytest.raises(ValueError, match='X_test has 5 rows but y_test has 4'):
        resolve((X, y, torch.rand(5, 7), torch.arange(4)))
    with pytest.raises(ValueError, match='X_train rows have shape'):
        resolve((X, y, torch.rand(5, 6), torch.arange(5)))
    with pytest.raises(ValueError, match='integer class labels'):
        resolve((X, y + 0.5, torch.rand(5, 7), torch.arange(5)))
    with pytest.raises(TypeError, match='dataset name'):
        resolve(42)

# --- task builders ---

def test_streams():
    assert split_classes(10, 5) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert split_classes([3, 1, 2], 2) == [[3, 1], [2]]
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    idx = stream(y, [[0, 1], [2, 3]])
    assert idx[0].tolist() == [0, 1, 4, 5] and idx[1].tolist() == [2, 3, 6, 7]

@pytest.mark.parametrize('tasks,msg', [
    ([[0, 1], [1, 2]], 'class 1 is in tasks\\[0\\] and tasks\\[1\\]'),
    ([[0, 1], []], 'tasks\\[1\\]=\\[\\]'),
    ([], 'non-empty list of class lists'),
    ([[0], 3], 'tasks\\[1\\]=3'),
])
def test_bad_streams(tasks, msg):
    with pytest.raises(ValueError, match=msg):
        check_tasks(tasks)

def test_stream_labels_outside():
    with pytest.raises(ValueError, match=r'classes \[7\]'):
        stream(torch.tensor([0, 1, 2]), [[0, 1], [7]])
    with pytest.raises(ValueError, match='n_tasks=4'):
        split_classes(3, 4)

def test_add_remove_splits():
    y = torch.arange(100) % 10
    old, new = add_split(y, new_frac=0.1, seed=1)
    assert len(new) == 10 and len(set(old.tolist()) | set(new.tolist())) == 100
    assert torch.equal(add_split(y, new_frac=0.1, seed=1)[1], new)
    old, new = add_split(y, new_classes=[9])
    assert (y[new] == 9).all() and (y[old] != 9).all()
    keep, rm = remove_split(100, 0.05, seed=0)
    assert len(rm) == 5 and len(keep) == 95
    with pytest.raises(ValueError, match='outside the training set'):
        remove_split(100, [1, 200])
    with pytest.raises(ValueError, match='new_frac=1.5'):
        add_split(y, new_frac=1.5)
    with pytest.raises(ValueError, match='covers every label'):
        add_split(y, new_classes=list(range(10)))

def test_episode():
    y = torch.arange(200) % 10
    s, q, cls = episode(y, n_way=4, k_shot=2, n_query=3, seed=0)
    assert len(s) == 8 and len(q) == 12 and len(set(cls)) == 4
    assert y[s].tolist() == [c for c in cls for _ in range(2)]
    assert not set(s.tolist()) & set(q.tolist())
    with pytest.raises(ValueError, match='has 20 examples'):
        episode(y, n_way=2, k_shot=15, n_query=10)
