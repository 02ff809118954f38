import os
from pathlib import Path
import numpy as np
import pytest
import torch
from adaptbook import data
from adaptbook.data import load, resolve, check_tasks, split_classes, stream, add_split, remove_split, episode

# --- the real datasets: from the data pack everywhere, Fashion-MNIST from the original files ---

PACKED = sorted(n for n, s in data.DATASETS.items() if s.pack)

@pytest.mark.parametrize('name,split,n,shape', [
    ('mnist', 'train', 60_000, (28, 28)), ('mnist', 'test', 10_000, (28, 28)),
    ('fashion-mnist', 'test', 10_000, (28, 28)), ('usps', 'train', 7_291, (16, 16)), ('usps', 'test', 2_007, (16, 16)),
    ('a7a', 'train', 16_100, (123,)), ('a7a', 'test', 16_461, (123,))])
def test_real_datasets(request, monkeypatch, name, split, n, shape):
    if name not in PACKED: monkeypatch.setenv('ADAPTBOOK_DATA', request.getfixturevalue('shared_data'))
    X, y = load(name, split)
    assert X.shape == (n, *shape) and y.shape == (n,)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= X.min() and X.max() <= 1
    assert y.min() == 0 and y.max() == (1 if name == 'a7a' else 9)

def test_the_pack_holds_what_quick_mode_reads_and_is_small():
    """MNIST, USPS, a7a and Omniglot whole and Fashion-MNIST's test split are found in the pack, each file with its
    pinned sha256; ≤ 25 MB in all."""
    assert PACKED == ['a7a', 'fashion-mnist', 'mnist', 'omniglot', 'usps']
    assert [n for n in PACKED if data.spec(n).pack[2] != data.spec(n).splits] == ['fashion-mnist']
    assert data.spec('fashion-mnist').pack[2] == ('test',)
    total = 0
    for n in PACKED:
        f, want, splits = data.spec(n).pack
        path = data.locate(n, split=splits[0])
        assert path == data.PACK.resolve() / f and data.sha256(path) == want, n
        total += path.stat().st_size
    assert total <= 25 * 2 ** 20, f'{total:,} bytes'
    assert sorted(p.name for p in data.PACK.iterdir()) == sorted([data.spec(n).pack[0] for n in PACKED] + ['README.md'])

def test_the_pack_readme_lists_each_file_with_its_bytes_and_sha256():
    text = (data.PACK / 'README.md').read_text()
    for n in PACKED:
        f, want, _ = data.spec(n).pack
        row = next(line for line in text.splitlines() if line.startswith(f'| {f} |'))
        assert f'{(data.PACK / f).stat().st_size:,}' in row and want in row, row
    assert 'Fashion-MNIST' in text and 'Licence' in text

def test_the_pack_comes_before_the_data_folder(shared_data, monkeypatch, tmp_path):
    "With $ADAPTBOOK_DATA set the pack is still what quick mode reads, so its numbers do not depend on the folder."
    monkeypatch.setenv('ADAPTBOOK_DATA', shared_data)
    assert data.places()[:2] == [data.PACK.resolve(), Path(shared_data).resolve()]
    for n in PACKED: assert data._in_pack(data.locate(n, split=data.spec(n).pack[2][-1])), n
    assert data.locate('fashion-mnist') == (Path(shared_data) / 'fashion-mnist').resolve()     # the whole: not packed
    assert not data._in_pack(data.locate('fashion-mnist', split='train'))
    assert data.places(tmp_path)[0] == tmp_path.resolve()                # an explicit root still comes first

def test_quick_mode_numbers_do_not_depend_on_the_data_folder(shared_data, monkeypatch, tmp_path):
    "The same experiment with $ADAPTBOOK_DATA pointing at the originals, at an empty folder, and unset: the same rows."
    from adaptbook import kprior
    rows = []
    for where in (shared_data, str(tmp_path), None):
        if where is None: monkeypatch.delenv('ADAPTBOOK_DATA', raising=False)
        else: monkeypatch.setenv('ADAPTBOOK_DATA', where)
        res = kprior.experiment('a7a', memory=(0.1,), seed=3, mode='quick', methods=('kprior', 'batch'), **kprior.HEADLINE_A7A)
        rows.append([(r['method'], r['acc'], r['examples']) for r in res])
    assert rows[0] == rows[1] == rows[2]

@pytest.mark.parametrize('name', PACKED)
def test_the_pack_reads_back_the_original_files_bit_for_bit(shared_data, name):
    "Every split of the pack holds the arrays the original files give, and loads the same tensors."
    s = data.spec(name)
    folder = data.locate(name, shared_data, pack=False)
    assert not data._in_pack(folder)
    with np.load(data.PACK / s.pack[0]) as z:
        for split in s.pack[2]:
            assert data._same(s.raw(folder, split), data._decode(z, split)) is None, split
        assert sorted({k.split('/')[0] for k in z.files}) == sorted(s.pack[2])          # no other split in the file
    split = s.pack[2][-1]
    a, b = load(name, split), s.reader(folder, split)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y) and a.X.dtype == b.X.dtype and sorted(a.extra) == sorted(b.extra)

def test_make_pack_gives_the_same_bytes_again(shared_data, tmp_path):
    "Rebuilt from the original files, a pack file has the pinned sha256 (a7a and USPS: the two fast ones)."
    done = data.make_pack(['a7a', 'usps'], out=tmp_path, root=shared_data, verbose=False)
    assert {n: r['sha256'] for n, r in done.items()} == {n: data.spec(n).pack[1] for n in ('a7a', 'usps')}
    assert not [p for p in tmp_path.iterdir() if '.part' in p.name]
    with pytest.raises(ValueError, match="'digits' is not in the data pack"):
        data.make_pack(['digits'], out=tmp_path)

def test_a_split_the_pack_lacks_says_so(tmp_path, monkeypatch):
    "Fashion-MNIST's training split is not packed: with no original files, the error says the pack holds only test."
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'data'))
    assert len(load('fashion-mnist', 'test')) == 10_000
    with pytest.raises(data.DatasetNotFound, match='the data pack holds only its test split') as e:
        load('fashion-mnist', 'train')
    assert e.value.name == 'fashion-mnist' and 'fetch' in str(e.value)

@pytest.mark.parametrize('damage', ['truncated', 'other bytes'])
def test_a_damaged_pack_file_is_named_and_never_read(tmp_path, monkeypatch, damage):
    import shutil
    monkeypatch.setattr(data, 'PACK', tmp_path)
    shutil.copyfile(_real_pack() / 'a7a.npz', tmp_path / 'a7a.npz')
    raw = (tmp_path / 'a7a.npz').read_bytes()
    (tmp_path / 'a7a.npz').write_bytes(raw[:len(raw) // 2] if damage == 'truncated' else raw[:-1] + b'x')
    with pytest.raises(data.ChecksumError) as e: load('a7a')
    assert 'a7a.npz is damaged' in str(e.value) and 'git checkout -- adaptbook/pack' in str(e.value)

def test_a_missing_pack_file_is_looked_for_elsewhere_and_named(tmp_path, monkeypatch):
    monkeypatch.setattr(data, 'PACK', tmp_path / 'pack')
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'data'))
    with pytest.raises(data.DatasetNotFound) as e: load('a7a')
    assert e.value.name == 'a7a' and str(tmp_path / 'pack' / 'a7a.npz') in str(e.value) and 'restore' in str(e.value)

def test_a_loaded_split_is_the_caller_s_to_change(monkeypatch):
    "Changing a loaded tensor in place changes nothing the next load returns (the pack's arrays are cached)."
    for n in PACKED:
        split = data.spec(n).pack[2][-1]
        first = load(n, split)
        want = first.X.clone()
        first.X.mul_(0).add_(7)
        assert torch.equal(load(n, split).X, want), n

def test_load_refuses_options_a_dataset_does_not_take():
    assert load('omniglot', 'evaluation', size=14).X.shape[1:] == (14, 14)
    with pytest.raises(ValueError, match="szie: not an option of dataset 'omniglot'; it takes size"):
        load('omniglot', 'evaluation', szie=14)
    with pytest.raises(ValueError, match="bogus: not an option of dataset 'a7a'; it takes none"):
        load('a7a', 'test', bogus=1)
    assert len(load('blobs', n_classes=3, per_class=5)) == 15

def test_locate_checks_the_split():
    with pytest.raises(ValueError, match=r"split='val' is not a split of 'mnist'"): data.locate('mnist', split='val')

def test_make_pack_refuses_bad_arguments_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'empty'))          # no originals anywhere
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    (tmp_path / 'a-file').write_text('x')
    with pytest.raises(ValueError, match='names=\\[\\] is empty'): data.make_pack([], out=tmp_path)
    with pytest.raises(ValueError, match="out='.*a-file' cannot be made"): data.make_pack('a7a', out=tmp_path / 'a-file')
    with pytest.raises(data.DatasetNotFound):
        data.make_pack('a7a', out=tmp_path / 'new', root=tmp_path / 'nowhere')
    assert not (tmp_path / 'new').exists()                           # nothing made before the originals are found

def test_short_path_cuts_only_at_a_folder_boundary(monkeypatch, tmp_path):
    (tmp_path / 'dat').mkdir(); (tmp_path / 'data').mkdir()
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path / 'dat'))
    assert data.short_path(tmp_path / 'data' / 'a7a') == str(tmp_path / 'data' / 'a7a')
    assert data.short_path(tmp_path / 'dat' / 'a7a') == '$ADAPTBOOK_DATA/a7a'

def test_cli_data_names_a_damaged_pack_file_and_fails(tmp_path, monkeypatch, capsys):
    import shutil
    from adaptbook import cli
    shutil.copytree(_real_pack(), tmp_path / 'pack')
    (tmp_path / 'pack' / 'usps.npz').write_bytes(b'x')
    monkeypatch.setattr(data, 'PACK', tmp_path / 'pack')
    assert cli.main(['data']) == 1
    out, err = capsys.readouterr()
    line = next(x for x in out.splitlines() if x.startswith('usps '))
    assert 'CORRUPT' in line and len(line) < 120 and 'usps.npz is damaged' in err

def _real_pack():
    import adaptbook
    return Path(adaptbook.__file__).parent / 'pack'

def test_mnist_class_counts():
    _, y = load('mnist', 'train')
    assert y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

def test_omniglot():
    d = load('omniglot', 'background')
    assert d.X.shape == (19_280, 28, 28) and d.y.max() == 963 and len(d.alphabets) == 30
    assert d.char_id.min() == 1 and d.drawer.max() == 19
    assert d.X.mean() < 0.5                       # ink is bright and sparse
    e = load('omniglot', 'evaluation', size=105)
    assert e.X.shape == (13_180, 105, 105) and e.char_id.min() == 965 and len(e.alphabets) == 20
    with pytest.raises(ValueError, match='size=0'):
        load('omniglot', 'background', size=0)

def test_empty_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path))
    monkeypatch.setattr(data, 'CACHE', tmp_path / 'cache')
    monkeypatch.setattr(data, 'PACK', tmp_path / 'no-pack')
    X, y = load('digits')                          # embedded: no files needed
    assert X.shape == (1437, 8, 8)
    with pytest.raises(data.DatasetNotFound) as e:
        load('mnist')
    msg = str(e.value)
    assert str(tmp_path) in msg and str(tmp_path / 'cache') in msg and 'ADAPTBOOK_DATA' in msg
    assert 'train-images-idx3-ubyte.gz' in msg and 'fetch' in msg

def test_root_comes_first(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_DATA', str(tmp_path))
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
