"""`adaptbook fetch` for USPS and Omniglot, with no network: torchvision's own `download_url` runs for real (its
redirect check, its progress bar, its md5 check), but `urllib.request.urlopen` serves local files: a tiny LIBSVM USPS
written here, and the official small Omniglot zips from the shared data repackaged under the names torchvision
downloads. The conversion into `usps.h5` / the Omniglot arrays, the sha256 record, its check on load, reconversion,
timeouts and failed downloads are all tested here."""
import bz2, hashlib, io, json, os, socket, subprocess, time, urllib.error, urllib.request, zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from adaptbook import data




class _Response(io.BytesIO):
    "What urlopen returns: bytes, their length and the final url (no redirect)."
    def __init__(self, url: str, body: bytes):
        super().__init__(body)
        self.url, self.length = url, len(body)


class _Half(_Response):
    "A response whose connection drops after a few bytes."
    def read(self, n=-1):
        if self.tell() == 0: return super().read(11)
        raise TimeoutError('timed out')


def _serve(monkeypatch, files: dict, half: bool = False) -> list:
    """Replace urlopen: a url in `files` (bytes or a Path) is served, any other fails as offline. Returns the list of
    GET urls requested (HEAD requests, torchvision's redirect check, are not counted)."""
    cur = urllib.request.urlopen
    if getattr(cur, 'files', None) is not None and not half:                   # one fake server for every fixture
        cur.files.update(files)
        return cur.got
    got, files = [], dict(files)
    def urlopen(req, *a, **k):
        url = getattr(req, 'full_url', req)
        head = getattr(req, 'headers', {}).get('Method') == 'HEAD'
        if url not in files: raise urllib.error.URLError(OSError(-2, 'Name or service not known'))
        if not head: got.append(url)
        body = files[url].read_bytes() if isinstance(files[url], Path) else files[url]
        return (_Half if half and not head else _Response)(url, body)
    urlopen.files, urlopen.got = files, got
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)
    return got


def _offline(monkeypatch):
    "Any download attempt fails at once, as with no network."
    def urlopen(*a, **k): raise AssertionError('no download expected here')
    monkeypatch.setattr(urllib.request, 'urlopen', urlopen)


def _md5(b: bytes) -> str: return hashlib.md5(b).hexdigest()


# --- USPS: a tiny LIBSVM file, both splits, bz2-compressed ---

def _libsvm_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    "n USPS-like rows: labels 1..10 (both ends included), 256 values in [-1, 1] with 6 decimals, and their LIBSVM text."
    g = np.random.default_rng(seed)
    labels = np.concatenate([[1, 10], g.integers(1, 11, n - 2)])
    X = np.round(g.uniform(-1, 1, (n, 256)), 6)
    X[:, :20] = -1.0                                   # paper, as in the real file
    text = ''.join(f"{lab} " + ' '.join(f'{j + 1}:{v:.6f}' for j, v in enumerate(row)) + '\n' for lab, row in zip(labels, X))
    return X, labels, bz2.compress(text.encode())


@pytest.fixture
def usps_server(monkeypatch):
    "torchvision's USPS urls serve a tiny LIBSVM USPS (5 train, 3 test rows); its md5s replace torchvision's."
    import torchvision.datasets as tvd
    (Xtr, ytr, btr), (Xte, yte, bte) = _libsvm_rows(5, 0), _libsvm_rows(3, 1)
    split_list = {'train': [tvd.USPS.split_list['train'][0], 'usps.bz2', _md5(btr)],
                  'test': [tvd.USPS.split_list['test'][0], 'usps.t.bz2', _md5(bte)]}
    monkeypatch.setattr(tvd.USPS, 'split_list', split_list)
    got = _serve(monkeypatch, {split_list['train'][0]: btr, split_list['test'][0]: bte})
    return {'train': (Xtr, ytr), 'test': (Xte, yte), 'requests': got, 'bytes': {'usps.bz2': btr, 'usps.t.bz2': bte}}


def test_usps_fetched_through_torchvision_and_converted(empty_machine, usps_server, capsys):
    folder = data.fetch('usps')
    assert folder == empty_machine / 'cache' / 'usps'
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*')) == \
        ['converted.json', 'raw', 'raw/usps.bz2', 'raw/usps.t.bz2', 'usps.h5']       # no .part, no temporary folder
    assert '100%' in capsys.readouterr().err                                        # torchvision's progress bar
    for split in ('train', 'test'):
        X, y = data.load('usps', split)
        Xw, lab = usps_server[split]
        assert X.shape == (len(lab), 16, 16) and X.dtype == torch.float32 and y.dtype == torch.int64
        assert y.tolist() == (lab - 1).tolist()                                      # label k -> k - 1
        np.testing.assert_allclose(X.reshape(len(lab), 256).numpy(), (Xw + 1) / 2, atol=1e-7)
    import h5py
    with h5py.File(folder / 'usps.h5') as f:                                        # exactly the shared file's layout
        assert sorted(f) == ['test', 'train'] and sorted(f['train']) == ['data', 'target']
        assert f['train/data'].dtype == np.float32 and f['train/data'].shape == (5, 256)
        assert f['test/target'].dtype == np.int32 and f['test/target'].shape == (3,)
    rec = json.loads((folder / 'converted.json').read_text())
    assert rec['files']['usps.h5']['sha256'] == data.sha256(folder / 'usps.h5')
    assert rec['sources']['usps.bz2']['md5'] == _md5(usps_server['bytes']['usps.bz2'])
    assert len(usps_server['requests']) == 2
    data.fetch('usps')                                                              # converted once: nothing to do
    out = data.ensure('usps')
    assert len(usps_server['requests']) == 2 and out['usps'] == folder
    assert 'usps: found in' in capsys.readouterr().out


def test_usps_converter_reads_plain_and_sparse_libsvm(tmp_path):
    (tmp_path / 'tr').write_text('3 1:-1 2:1 256:0.5\n')                           # not compressed; indices left out = 0
    (tmp_path / 'te').write_text('10 17:-0.5\n')
    data.convert_usps(tmp_path / 'tr', tmp_path / 'te', tmp_path / 'usps.h5')
    tr, te = data.spec('usps').reader(tmp_path, 'train'), data.spec('usps').reader(tmp_path, 'test')
    assert tr.y.tolist() == [2] and te.y.tolist() == [9]
    assert tr.X[0, 0, :3].tolist() == [0.0, 1.0, 0.5] and tr.X[0, 15, 15].item() == 0.75
    assert te.X[0, 1, 0].item() == 0.25 and te.X[0, 0, 0].item() == 0.5


@pytest.mark.parametrize('text,msg', [
    ('0 1:0\n', 'labels must be integers 1..10'),
    ('11 1:0\n', 'labels must be integers 1..10'),
    ('1.5 1:0\n', 'labels must be integers 1..10'),
    ('1 1:1.5\n', r'values must lie in \[-1, 1\]'),
    ('1 257:0\n', 'is not a LIBSVM USPS file'),
    ('1 0:0\n', 'is not a LIBSVM USPS file'),
    ('hello world\n', 'is not a LIBSVM USPS file'),
    ('', 'holds no digits'),
])
def test_usps_converter_refuses_other_files(tmp_path, text, msg):
    good = tmp_path / 'good'
    good.write_text('1 1:0\n')
    (tmp_path / 'bad').write_text(text)
    with pytest.raises(data.ConversionError, match=msg) as e:
        data.convert_usps(good, tmp_path / 'bad', tmp_path / 'usps.h5')
    assert str(tmp_path / 'bad') in str(e.value) or msg == 'holds no digits'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad', 'good']             # no usps.h5, no .part
    with pytest.raises(FileNotFoundError, match='nope'):
        data.read_usps_libsvm(tmp_path / 'nope')


def test_usps_full_size_round_trip(shared_data, tmp_path):
    "The shared usps.h5 written as LIBSVM (values 2x - 1) converts back to the same digits and labels."
    import h5py
    with h5py.File(Path(shared_data) / 'usps' / 'usps.h5') as f:
        ref = {s: (f[s]['data'][:], f[s]['target'][:]) for s in ('train', 'test')}
    from sklearn.datasets import dump_svmlight_file
    for s, fn in (('train', 'usps.bz2'), ('test', 'usps.t.bz2')):
        X, y = ref[s]
        buf = io.BytesIO()                             # LIBSVM text: 3-decimal values like the real file; zeros left out
        dump_svmlight_file(np.round(2 * X.astype(np.float64) - 1, 6), y + 1, buf, zero_based=False)
        (tmp_path / fn).write_bytes(bz2.compress(buf.getvalue()) if s == 'test' else buf.getvalue())   # plain is read too
    data.convert_usps(tmp_path / 'usps.bz2', tmp_path / 'usps.t.bz2', tmp_path / 'usps.h5')
    for s in ('train', 'test'):
        d = data.spec('usps').reader(tmp_path, s)
        assert d.y.tolist() == ref[s][1].tolist()
        np.testing.assert_allclose(d.X.reshape(len(d.y), 256).numpy(), ref[s][0], atol=1e-6)


# --- Omniglot: the official small zips, under the names torchvision downloads ---

def _rezip(src: Path, dst: Path, top: str):
    "Copy zip `src` to `dst` with its top folder renamed `top` (images_background_small1/ -> images_background/)."
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, 'w') as zo:
        for info in zi.infolist():
            name = top + '/' + info.filename.split('/', 1)[1] if '/' in info.filename else info.filename
            if name != top + '/': zo.writestr(name, zi.read(info))


@pytest.fixture
def omniglot_server(shared_data, tmp_path, monkeypatch):
    "torchvision's Omniglot urls serve small1 as images_background.zip and small2 as images_evaluation.zip."
    import torchvision.datasets as tvd
    om, made = Path(shared_data) / 'omniglot', {}
    for k, small in (('images_background', 'small1'), ('images_evaluation', 'small2')):
        _rezip(om / f'images_background_{small}.zip', tmp_path / f'{k}.zip', k)
        made[k] = (tmp_path / f'{k}.zip').read_bytes()
    monkeypatch.setattr(tvd.Omniglot, 'zips_md5', {k: _md5(b) for k, b in made.items()})
    got = _serve(monkeypatch, {f'{tvd.Omniglot.download_url_prefix}/{k}.zip': b for k, b in made.items()})
    return got


def test_omniglot_small_zips_fetched_and_converted(shared_data, empty_machine, omniglot_server):
    folder = data.fetch('omniglot')
    assert sorted(p.name for p in folder.iterdir()) == \
        ['alphabets.csv', 'converted.json', 'images_background.npz', 'images_evaluation.npz', 'raw']
    bg, ev = data.load('omniglot', 'background'), data.load('omniglot', 'evaluation', size=105)
    assert bg.X.shape == (136 * 20, 28, 28) and ev.X.shape == (156 * 20, 105, 105)   # 136 and 156 characters
    assert bg.alphabets == ['Balinese', 'Early_Aramaic', 'Greek', 'Korean', 'Latin']
    assert ev.alphabets == ['Greek', 'Japanese_(katakana)', 'Latin', 'Sanskrit', 'Tagalog']
    assert bg.char_id[0].item() == 108 and bg.char_id[-1].item() == 708 and ev.drawer.max().item() == 19
    assert bg.y.bincount().tolist() == [20] * 136
    # the same layout, dtypes and pixels as the shared arrays made from the full official zips
    full = np.load(Path(shared_data) / 'omniglot' / 'images_background.npz')
    import csv
    with open(Path(shared_data) / 'omniglot' / 'alphabets.csv') as f:
        start = {r['alphabet']: int(r['npz_row_start']) for r in csv.DictReader(f) if r['split'] == 'background'}
    for split, d in (('background', bg), ('evaluation', ev)):
        ours = np.load(folder / f'images_{split}.npz')
        assert sorted(ours.files) == ['images', 'labels'] and ours['images'].dtype == bool
        assert ours['labels'].dtype == np.int64 and ours['labels'].shape == (len(d) // 20, 20)
        assert (ours['labels'] == np.arange(len(d) // 20)[:, None]).all()
        with open(folder / 'alphabets.csv') as f:
            rows = [r for r in csv.DictReader(f) if r['split'] == split]
        for r in rows:
            a, b = int(r['npz_row_start']), int(r['npz_row_stop'])
            s = start[r['alphabet']]
            assert np.array_equal(ours['images'][a:b], full['images'][s:s + b - a]), r['alphabet']
    assert (folder / 'alphabets.csv').read_bytes().startswith(b'split,alphabet,first_char_id,last_char_id,'
                                                              b'n_characters,npz_row_start,npz_row_stop\r\n')


@pytest.mark.parametrize('names,msg', [
    (['top/A/character01/0001_01.png'], 'has 1 drawings, not 20'),
    ([f'top/A/character02/0002_{d:02d}.png' for d in range(1, 21)], "characters are not all there"),
    ([f'top/A/character01/0001_{d:02d}.png' for d in range(1, 21)]
     + [f'top/A/character03/0003_{d:02d}.png' for d in range(1, 21)], 'a missing character'),
    (['top/A/0001_01.png'], 'is not <top>/<alphabet>/characterNN/<id>_<drawer>.png'),
    (['top/readme.txt'], 'is not <top>/<alphabet>'),
    ([], 'holds no Omniglot PNGs'),
])
def test_omniglot_converter_refuses_other_layouts(tmp_path, names, msg):
    from PIL import Image
    buf = io.BytesIO()
    Image.new('1', (105, 105), 1).save(buf, 'PNG')
    with zipfile.ZipFile(tmp_path / 'x.zip', 'w') as z:
        for n in names: z.writestr(n, buf.getvalue())
    with pytest.raises(data.ConversionError, match=msg):
        data.read_omniglot_zip(tmp_path / 'x.zip', progress=False)
    (tmp_path / 'y.zip').write_bytes(b'not a zip')
    with pytest.raises(data.ConversionError, match='is not a zip file'):
        data.convert_omniglot(tmp_path / 'y.zip', tmp_path / 'y.zip', tmp_path, progress=False)
    assert not list(tmp_path.glob('*.npz')) and not list(tmp_path.glob('*.part'))


# --- a damaged conversion is detected by its sha256 and converted again ---

@pytest.mark.parametrize('damage', ['flip', 'truncate', 'no-record'])
def test_damaged_conversion_detected_and_reconverted(empty_machine, usps_server, monkeypatch, capsys, damage):
    folder = data.fetch('usps')
    h5 = folder / 'usps.h5'
    good = h5.read_bytes()
    if damage == 'flip': h5.write_bytes(good[:2000] + bytes(b ^ 0xFF for b in good[2000:2010]) + good[2010:])
    elif damage == 'truncate': h5.write_bytes(good[:len(good) // 2])
    else: (folder / 'converted.json').unlink()                                       # a conversion cut off before its record
    with pytest.raises(data.ChecksumError, match='is damaged' if damage != 'no-record' else 'corrupt') as e:
        data.load('usps')
    assert str(h5) in str(e.value) and '`adaptbook fetch usps` converts it again' in str(e.value)
    _offline(monkeypatch)                                                          # reconverted from raw/: no network
    out = data.ensure('usps')
    assert 'converting again' in capsys.readouterr().out and out['usps'] == folder
    assert data.load('usps').y.tolist() == (usps_server['train'][1] - 1).tolist()
    h5.write_bytes(good[:100])
    assert len(data.load('usps', 'test', download=True)) == 3                       # load(download=True) repairs too


def test_damaged_copy_elsewhere_is_reported_not_replaced(empty_machine, usps_server):
    "A damaged conversion in $ADAPTBOOK_DATA (not where fetch writes) is reported by ensure, never overwritten."
    folder = data.fetch('usps', root=empty_machine / 'data')                        # converted into $ADAPTBOOK_DATA/usps
    (folder / 'usps.h5').write_bytes(b'x')
    with pytest.raises(data.ChecksumError, match='is damaged'):
        data.ensure('usps')
    assert (folder / 'usps.h5').read_bytes() == b'x' and not (empty_machine / 'cache' / 'usps').exists()


def test_ctrl_c_during_conversion_leaves_no_half_written_file(empty_machine, usps_server, monkeypatch):
    "Interrupted just before a converted file is renamed into place: no .part, no usps.h5, no record; the downloads stay."
    def interrupted(fd): raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(os, 'fsync', interrupted)
        with pytest.raises(KeyboardInterrupt):
            data.fetch('usps')
    folder = empty_machine / 'cache' / 'usps'
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*')) == ['raw', 'raw/usps.bz2', 'raw/usps.t.bz2']
    _offline(monkeypatch)                                       # the md5-checked downloads are reused: no network
    assert data.fetch('usps') == folder and len(data.load('usps', 'test')) == 3


# --- failed downloads: a clear line, nothing left behind ---

@pytest.mark.parametrize('name', ['usps', 'omniglot'])
def test_failed_download_leaves_nothing_behind(empty_machine, monkeypatch, name):
    urls = [u for u, _, _ in data.torchvision_sources(name)]
    urls += [u.replace('https:', 'http:') for u in urls]                          # torchvision tries http after https
    _serve(monkeypatch, {u: b'x' * 1000 for u in urls}, half=True)                # a few bytes, then the line drops
    with pytest.raises(data.DownloadError) as e:
        data.fetch(name, timeout=5)
    msg = str(e.value)
    assert msg.startswith(f'{name}: could not download ') and 'no answer within 5 s' in msg and '\n' not in msg
    assert not (empty_machine / 'cache' / name).exists()
    assert not [p for p in (empty_machine / 'cache').rglob('*') if p.is_file()]


class _Trickle(_Response):
    "A mirror that answers every read at once, one byte at a time, with a pause: never a socket timeout, never done."
    def read(self, n=-1):
        time.sleep(0.05)
        return super().read(1)


@pytest.mark.parametrize('name', ['usps', 'a7a'])
def test_a_trickling_mirror_ends_at_the_deadline_and_leaves_nothing(empty_machine, monkeypatch, name):
    "Issue #33, kind 9: the per-read timeout never fires on a slow mirror; the overall deadline does, and says so."
    sources = data.torchvision_sources(name) if name == 'usps' else [(u, f, None) for f, u in data.spec(name).urls.items()]
    urls = [u for u, _, _ in sources]
    urls += [u.replace('https:', 'http:') for u in urls]
    _serve(monkeypatch, {u: b'x' * 10**6 for u in urls})
    monkeypatch.setattr(urllib.request, 'urlopen', lambda req, *a, **k: _Trickle(getattr(req, 'full_url', req), b'x' * 10**6))
    t = time.perf_counter()
    with pytest.raises(data.DownloadError, match=rf'{name}: the download did not finish within 1 s \(deadline'):
        data.fetch(name, timeout=5, deadline=1)
    assert time.perf_counter() - t < 30                      # the deadline, not the 10**6 reads, ended it
    assert not [p for p in (empty_machine / 'cache').rglob('*') if p.is_file()]
    with pytest.raises(ValueError, match='deadline=0 must be a number of seconds > 0'):
        data.fetch(name, deadline=0)


def test_wrong_md5_is_refused(empty_machine, monkeypatch):
    urls = [u for u, _, _ in data.torchvision_sources('usps')]
    _serve(monkeypatch, {u: b'not the real file' for u in urls})                   # torchvision's real md5s
    with pytest.raises(data.DownloadError, match='usps: could not download usps.bz2 .*its md5 is not ec16c51d'):
        data.fetch('usps')
    assert not (empty_machine / 'cache' / 'usps').exists()


def test_ensure_no_network_one_line_per_dataset(empty_machine, monkeypatch):
    _serve(monkeypatch, {})
    for name in ('usps', 'omniglot', 'a7a'):
        with pytest.raises(data.DatasetNotFound) as e:
            data.ensure(name)
        msg = str(e.value)
        assert msg.startswith(f'{name} is missing: it is part of the data pack') and '\n' not in msg
        assert f'Download failed: DownloadError: {name}: could not download' in msg and 'Name or service not known' in msg
    assert not [p for p in (empty_machine / 'cache').rglob('*') if p.is_file()]


def test_a_server_that_never_answers_times_out(empty_machine, monkeypatch):
    "A real socket that accepts and never answers: the download gives up after `timeout` seconds, naming the dataset."
    import torchvision.datasets as tvd
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(8)
    url = f'http://127.0.0.1:{srv.getsockname()[1]}/usps.bz2'
    monkeypatch.setattr(tvd.USPS, 'split_list', {'train': [url, 'usps.bz2', '0' * 32], 'test': [url, 'usps.t.bz2', '0' * 32]})
    monkeypatch.delenv('http_proxy', raising=False)
    monkeypatch.delenv('HTTP_PROXY', raising=False)
    import concurrent.futures
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:                              # a hang guard, not a timing assert: a fetch that never gives up fails the test
        with pytest.raises(data.DownloadError, match=r'usps: could not download usps.bz2 .*\(no answer within 0.5 s\)'):
            pool.submit(data.fetch, 'usps', timeout=0.5).result(timeout=300)
    finally:
        srv.close()
        pool.shutdown(wait=False)
    assert socket.getdefaulttimeout() is None                                        # the process default is restored
    assert not (empty_machine / 'cache' / 'usps').exists()


@pytest.mark.parametrize('timeout', [0, -1, 'soon', True, float('nan')])
def test_bad_timeout(empty_machine, timeout):
    with pytest.raises(ValueError, match=f'timeout={timeout!r} must be a number of seconds > 0'):
        data.fetch('usps', timeout=timeout)
    assert not (empty_machine / 'cache' / 'usps').exists()


# --- `adaptbook fetch all`: all five datasets, through torchvision, with no network ---

def test_fetch_all_gets_all_five(shared_data, empty_machine, usps_server, omniglot_server, monkeypatch, capsys):
    import torchvision.datasets as tvd
    from adaptbook import cli
    sd, files = Path(shared_data), {}
    for name, cls in (('mnist', tvd.MNIST), ('fashion-mnist', tvd.FashionMNIST)):
        for fn, _ in cls.resources: files[f'{cls.mirrors[0]}{fn}'] = sd / name / fn      # torchvision's own md5s hold
    for fn, url in data.spec('a7a').urls.items(): files[url] = sd / 'a7a' / fn
    got = _serve(monkeypatch, files)                                    # added to the USPS and Omniglot files served
    out = cli.fetch_datasets(['all'])
    assert len(got) == 4 + 4 + 2 + 2 + 2                                          # every file downloaded once
    assert sorted(out) == ['a7a', 'fashion-mnist', 'mnist', 'omniglot', 'usps']
    assert all(Path(f).parent == empty_machine / 'cache' for f in out.values())
    text = capsys.readouterr().out
    assert all(f'{n}: downloaded' in text for n in out) and 'usps: downloaded and converted' in text
    assert {r['name']: r['check'] for r in data.status() if r['where'] != 'embedded'} == dict.fromkeys(out, 'ok')
    assert len(data.load('mnist', 'test')) == 10_000 and len(data.load('omniglot', 'evaluation')) == 156 * 20


def test_cli_fetch_no_network_one_line_each(tmp_path):
    """The real command with every connection refused (a proxy that is not there): the pack's datasets are found, the
    missing one gets one line saying what to do, exit 2."""
    dead = 'http://127.0.0.1:9'
    env = dict(os.environ, ADAPTBOOK_DATA=str(tmp_path / 'data'), HOME=str(tmp_path), http_proxy=dead, https_proxy=dead,
               HTTP_PROXY=dead, HTTPS_PROXY=dead, no_proxy='', NO_PROXY='')
    r = subprocess.run(['adaptbook', 'fetch', 'usps', 'fashion-mnist', 'omniglot'], capture_output=True, text=True,
                       env=env, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith('adaptbook: error: fashion-mnist is missing') and 'Download failed:' in lines[0]
    assert 'usps: found in <adaptbook>/pack/usps.npz' in r.stdout and 'omniglot: found in <adaptbook>/pack' in r.stdout
    assert not [p for p in (tmp_path / '.cache' / 'adaptbook').rglob('*') if p.is_file()]
