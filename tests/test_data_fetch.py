"""data.fetch / ensure on a fresh machine, offline: torchvision's download is replaced by a copy of the real files
(what torchvision would have downloaded and md5-checked), so the laying-out into adaptbook's cache and the sha256 check
are tested without network; an empty machine with no network stops with a one-line instruction."""
import shutil
from pathlib import Path
import pytest
from adaptbook import data


def _fake_torchvision(src: Path, corrupt: str | None = None):
    "A stand-in for torchvision.datasets.X(root, download=True): lays out root/<Class>/raw/*.gz like torchvision does."
    def make(cls_name):
        def init(self, root, train=True, download=False, **kw):
            raw = Path(root) / cls_name / 'raw'
            raw.mkdir(parents=True, exist_ok=True)
            for f in src.iterdir():
                if f.suffix == '.gz': shutil.copyfile(f, raw / f.name)
            if corrupt: (raw / corrupt).write_bytes(b'not the file')
        return type(cls_name, (), {'__init__': init})
    return make

@pytest.mark.parametrize('name,cls', [('mnist', 'MNIST'), ('fashion-mnist', 'FashionMNIST')])
def test_fetch_through_torchvision_lays_checked_files(shared_data, empty_machine, monkeypatch, name, cls):
    import torchvision.datasets as tvd
    monkeypatch.setattr(tvd, cls, _fake_torchvision(Path(shared_data) / name)(cls))
    with pytest.raises(data.DatasetNotFound): data.locate(name)
    folder = data.fetch(name)
    assert folder == (empty_machine / 'cache' / name).resolve() or folder == empty_machine / 'cache' / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.spec(name).files)   # no torchvision leftovers
    X, y = data.load(name, 'test')
    assert X.shape[0] == 10000 and int(y.max()) == 9

def test_fetch_rejects_a_wrong_file(shared_data, empty_machine, monkeypatch):
    import torchvision.datasets as tvd
    monkeypatch.setattr(tvd, 'MNIST', _fake_torchvision(Path(shared_data) / 'mnist', corrupt='t10k-labels-idx1-ubyte.gz')('MNIST'))
    with pytest.raises(data.ChecksumError, match='t10k-labels-idx1-ubyte.gz'):
        data.fetch('mnist')

def test_ensure_offline_search_order_first(shared_data, monkeypatch, capsys):
    import torchvision.datasets as tvd
    monkeypatch.setattr(tvd, 'MNIST', None)          # must not be touched: the pack holds MNIST
    monkeypatch.setattr(tvd, 'FashionMNIST', None)   # nor this: the files are in $ADAPTBOOK_DATA
    monkeypatch.setenv('ADAPTBOOK_DATA', shared_data)
    out = data.ensure('digits', 'mnist', 'fashion-mnist')
    assert out['digits'] is None and out['mnist'] == data.locate('mnist') and data._in_pack(out['mnist'])
    said = capsys.readouterr().out
    assert 'mnist: found in <adaptbook>/pack/mnist.npz' in said and 'fashion-mnist: found in $ADAPTBOOK_DATA/fashion-mnist' in said

@pytest.mark.parametrize('name,kw,msg', [
    ('omniglot', {}, 'omniglot is missing: it is part of the data pack'),                            # no network
    ('omniglot', {'download': False}, 'or put its files (images_background.npz'),
    ('usps', {}, 'usps is missing: it is part of the data pack'),
    ('usps', {'download': False}, 'or put its files (usps.h5)'),
    ('mnist', {'download': False}, 'restore it with `git checkout -- adaptbook/pack`'),
    ('fashion-mnist', {}, 'fashion-mnist is missing: run `adaptbook fetch fashion-mnist` where there is network'),
])
def test_ensure_empty_machine_one_line(empty_machine, monkeypatch, name, kw, msg):
    _no_network(monkeypatch)
    with pytest.raises(data.DatasetNotFound) as e: data.ensure(name, **kw)
    assert msg in str(e.value) and '\n' not in str(e.value) and 'ADAPTBOOK_DATA=<folder>' in str(e.value)
    assert ('Download failed' in str(e.value)) == (kw == {})

def test_ensure_no_network_says_what_to_do(empty_machine, monkeypatch):
    import torchvision.datasets as tvd
    class NoNet:
        def __init__(self, *a, **k): raise RuntimeError('Error downloading train-images-idx3-ubyte.gz')
    monkeypatch.setattr(tvd, 'MNIST', NoNet)
    with pytest.raises(data.DatasetNotFound, match=r'mnist is missing: it is part of the data pack.*Download failed: RuntimeError'):
        data.ensure('mnist')

def test_ensure_bad_name():
    with pytest.raises(ValueError, match="dataset 'nope' is not known"): data.ensure('nope')


class _HalfResponse:
    "A response that sends a few bytes, then the connection drops."
    def __init__(self, url): self.url, self.length, self.sent = url, 1000, False
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def read(self, n=-1):
        if not self.sent:
            self.sent = True
            return b'half a file'
        raise TimeoutError('timed out')

def _no_network(monkeypatch):
    "urllib and torchvision both fail as they do offline, after writing part of a file."
    import urllib.request
    import torchvision.datasets as tvd
    def urlretrieve(url, path):
        Path(path).write_bytes(b'half a file')
        raise OSError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(urllib.request, 'urlopen', lambda req, *a, **k: _HalfResponse(getattr(req, 'full_url', req)))
    def init(self, root, train=True, download=False, **kw):
        raise RuntimeError('Error downloading train-images-idx3-ubyte.gz')
    monkeypatch.setattr(urllib.request, 'urlretrieve', urlretrieve)
    for cls in ('MNIST', 'FashionMNIST'): monkeypatch.setattr(tvd, cls, type(cls, (), {'__init__': init}))


@pytest.mark.parametrize('name', ['a7a', 'mnist', 'usps', 'omniglot'])
def test_a_failed_download_leaves_nothing_behind(empty_machine, monkeypatch, name):
    _no_network(monkeypatch)
    with pytest.raises((OSError, RuntimeError)):
        data.fetch(name)
    assert not (empty_machine / 'cache' / name).exists()            # no empty folder, no .part file


def test_fetch_all_offline_tries_every_dataset_and_names_each_missing_one(empty_machine, monkeypatch):
    from adaptbook import cli
    _no_network(monkeypatch)
    with pytest.raises(data.DatasetNotFound) as e:
        cli.fetch_datasets(['all'])
    lines = str(e.value).splitlines()
    wanted = [n for n, s in data.DATASETS.items() if not s.embedded]
    assert len(lines) == len(wanted) and all(any(line.startswith(f'{n} is missing') for line in lines) for n in wanted)
    assert not (empty_machine / 'cache').exists() or not any((empty_machine / 'cache').iterdir())
    with pytest.raises(ValueError, match="'nope' is not known"):
        cli.fetch_datasets(['mnist', 'nope'])                        # a typo fails before anything is fetched


def _fetch_in_child(q):
    try: q.put(str(data.fetch('mnist')))
    except BaseException as e: q.put(f'error: {e!r}')

def test_two_processes_fetching_the_same_dataset_take_turns(shared_data, empty_machine, monkeypatch):
    "The second process waits for the first one's lock, then finds the files: one download, both get the folder."
    import multiprocessing as mp, time
    import torchvision.datasets as tvd
    make, log = _fake_torchvision(Path(shared_data) / 'mnist')('MNIST'), empty_machine / 'downloads.log'
    def slow(self, root, **kw):
        with open(log, 'a') as f: f.write('download\n')
        time.sleep(1.0)                                        # long enough for the two to overlap without the lock
        make.__init__(self, root, **kw)
    monkeypatch.setattr(tvd, 'MNIST', type('MNIST', (), {'__init__': slow}))
    ctx = mp.get_context('fork')
    q = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(q,)) for _ in range(2)]
    for p in procs: p.start()
    got = [q.get(timeout=60) for _ in procs]
    for p in procs: p.join(timeout=60)
    assert got[0] == got[1] and not got[0].startswith('error'), got
    assert log.read_text().count('download') == 1
    assert sorted(p.name for p in Path(got[0]).iterdir()) == sorted(data.spec('mnist').files)
