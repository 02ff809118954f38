"""The one writer every file of the book goes through (`core.atomic_path` / `write_atomic`), and damaged entries in
each store read as absent or named (issue #33, kinds 6 and 7): a table of store × damage, and a scan of the library
for writers that bypass it."""
import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from adaptbook import core, zoo
from adaptbook import zapping as Z

LIB = Path(core.__file__).parent


def test_write_atomic_replaces_whole_and_leaves_nothing(tmp_path):
    p = tmp_path / 'sub' / 'r.json'
    assert core.write_atomic(p, lambda t: t.write_text('one')) == p and p.read_text() == 'one'
    for stop in (KeyboardInterrupt, SystemExit, OSError):
        def half(t, stop=stop):
            t.write_text('half')
            raise stop()
        with pytest.raises(stop): core.write_atomic(p, half)
        assert p.read_text() == 'one'                                  # the old file, whole
    assert sorted(x.name for x in p.parent.iterdir()) == ['r.json']    # no temporary file left, whatever stopped it
    assert oct(p.stat().st_mode & 0o777) == '0o644'


def test_two_writers_never_share_a_temporary_file(tmp_path):
    "A writer that starts while another is writing the same file gets its own temporary name; the last rename wins."
    p, seen = tmp_path / 'e.pt', []
    def outer(t):
        seen.append(t)
        core.write_atomic(p, lambda t2: (seen.append(t2), t2.write_text('inner')))
        t.write_text('outer')
    core.write_atomic(p, outer)
    assert seen[0] != seen[1] and all('.part' in t.name and t.name.endswith('.pt') for t in seen)
    assert p.read_text() == 'outer' and [x.name for x in tmp_path.iterdir()] == ['e.pt']


WRITES = re.compile(r"torch\.save\(|\.write_text\(|\.write_bytes\(|savefig\(|np\.savez|open\([^)]*['\"][wa]b?['\"]")
THROUGH = re.compile(r"write_atomic\(|_atomic\(|atomic_path\(|\btmp\b|\bt2?\b\)|\bp\b[,)]|\bfh\b|\bbuf\b")
ALLOWED = {                                          # writers that are not caches, each with its reason
    ('core.py', "with open(path, 'w') as f: f.write(s)"): 'Results.to_json(path): the file the caller names',
    ('core.py', "with open(path, 'w') as f:"): '_locked: the lock file itself, empty',
}


def test_no_module_but_the_store_writes_a_file():
    "Every write in the library goes through atomic_path/write_atomic (into its temporary file) or is listed above."
    for sample in ("torch.save(net.state_dict(), path)", "path.write_text(json.dumps(rec))", "fig.savefig(out / 'a.png')",
                   "with open(cache / 'x.json', 'w') as f:", "tmp_js.write_text(s)"):
        assert WRITES.search(sample) and not THROUGH.search(sample), sample      # the scan would catch these
    stray = []
    for f in sorted(LIB.glob('*.py')):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if line.lstrip().startswith('#') or not WRITES.search(line): continue
            if THROUGH.search(line) or (f.name, line.strip()) in ALLOWED: continue
            stray.append(f'{f.name}:{i}: {line.strip()}')
    assert not stray, 'writers that bypass core.atomic_path:\n' + '\n'.join(stray)


# --- damage: each store, each kind of damage -> absent (computed again) or one line naming the file and the fix ---

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    monkeypatch.setattr(Z, '_NETS', {})
    return tmp_path


DAMAGE = {'truncated': lambda p: p.write_bytes(p.read_bytes()[:50]), 'empty': lambda p: p.write_bytes(b''),
          'json list': lambda p: p.write_text('[1, 2]'), 'not json': lambda p: p.write_text('{"a": ')}


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'json list', 'not json'])
def test_zoo_user_cache_record_damaged_reads_as_absent(cache, damage):
    zoo.pretrain('digits-mlp', seed=5, verbose=False)
    js = next((cache / 'zoo').glob('digits-mlp-*-s5-*.json'))
    DAMAGE[damage](js)
    with pytest.warns(UserWarning, match='does not match its sha256'):
        assert zoo.record('digits-mlp', 5) is None


def test_a_damaged_shipped_entry_is_named_with_a_fix_that_works_and_the_zoo_table_still_stands(tmp_path, monkeypatch):
    shipped = tmp_path / 'zoo_weights'
    shipped.mkdir()
    monkeypatch.setattr(zoo, 'shipped_dir', lambda: shipped)
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path / 'cache'))
    zoo.pretrain('digits-mlp', seed=0, verbose=False, out=shipped)
    pt = next(shipped.glob('*.pt'))
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(RuntimeError, match=r'do not match their record .*--ship --force'):
        zoo.load('digits-mlp', seed=0)
    rows = [r for r in zoo.table(seeds=(0,)).splitlines() if r.startswith('| `')]
    assert len(rows) == len(zoo.names())
    assert [r for r in rows if 'digits-mlp' in r][0].endswith('damaged: restore the package (`git checkout -- '
                                                                   'adaptbook/zoo_weights`, or reinstall) |')
    zoo.pretrain('digits-mlp', seed=0, verbose=False, out=shipped)              # the fix the message gives
    assert zoo.load('digits-mlp', seed=0).zoo_record['where'] == str(shipped)


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'not json'])
def test_a_damaged_zapping_encoder_is_trained_again(cache, damage):
    X, y = torch.rand(40, 28, 28), torch.arange(40) % 4
    st = Z.ZappingSettings(pretrain_classes=4, pretrain_epochs=2, widths=(4, 4, 4), hidden=8)
    net, info = Z.pretrained('iid', 0, st, pretrain=(X, y, X, y))
    path = next((cache / 'encoders' / 'zapping').glob('*.pt'))
    DAMAGE[damage](path)
    Z._NETS.clear()
    with pytest.warns(UserWarning, match='cannot be read'):
        again, info2 = Z.pretrained('iid', 0, st, pretrain=(X, y, X, y))
    assert not info2['cached'] and torch.equal(again[-1].weight, net[-1].weight)   # the same seed, the same weights
    Z._NETS.clear()
    assert Z.pretrained('iid', 0, st, pretrain=(X, y, X, y))[1]['cached']       # rewritten whole


def test_a_damaged_file_in_torchs_hub_cache_is_named(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    w = torchvision.models.get_model_weights('mobilenet_v3_small').DEFAULT
    (tmp_path / 'checkpoints').mkdir()
    (tmp_path / 'checkpoints' / w.url.split('/')[-1]).write_bytes(b'half a file')
    with pytest.raises(RuntimeError, match=r"hub cache cannot be loaded: .*mobilenet_v3_small.* is damaged"):
        zoo.imagenet('mobilenet_v3_small', hub_dir=tmp_path)


def test_sigterm_mid_write_exits_143_and_leaves_no_temporary_file(tmp_path):
    "The CLI turns SIGTERM into SystemExit, so the writer's cleanup runs (a plain SIGTERM would skip it)."
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from adaptbook import cli, core
        cli._sigterm_exits()
        def slow(tmp):
            tmp.write_text('half')
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        core.write_atomic({str(tmp_path / 'out.json')!r}, slow)
    """)
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, timeout=60)
    assert r.returncode == 128 + signal.SIGTERM, r.stderr.decode()[-500:]
    assert list(tmp_path.iterdir()) == []


def test_a_cached_result_is_keyed_by_the_zoo_weights_and_an_encoder_by_its_code(tmp_path, monkeypatch):
    "Kind 1: a retrained zoo entry is not served results computed from the old one; a zapping encoder names its code."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    calls = []

    @core.cached('toy')
    def toy(mode=None, seed=0):
        calls.append(seed)
        r = core.new_results('toy', 'k', 'digits', seed=seed, mode=core.get_mode(mode))
        r.record('retrain', 'retrain', 0.5, seed=seed, k=None)
        return r
    toy(seed=0), toy(seed=0)
    assert calls == [0]
    (tmp_path / 'zoo').mkdir()
    (tmp_path / 'zoo' / 'digits-mlp-quick-s9-abc.json').write_text(json.dumps({'sha256': 'f' * 64}))
    toy(seed=0)
    assert calls == [0, 0]                                   # another zoo: computed again
    (tmp_path / 'zoo' / 'digits-mlp-quick-s9-abc.json').write_text(json.dumps({'sha256': 'e' * 64}))
    toy(seed=0)
    assert calls == [0, 0, 0]                                # a retrained entry: again
    st = Z._filled(Z.ZappingSettings(), 'quick')
    key = Z._key(st, 'iid', 0, 0, 'omniglot')
    monkeypatch.setattr(Z, 'run_digest', lambda name: 'other code')
    assert Z._key(st, 'iid', 0, 0, 'omniglot') != key


def test_an_unwritable_or_full_cache_is_refused_before_any_work(tmp_path, monkeypatch):
    "Kind 5: the results cache, the zoo and the encoder cache check the folder and its room before training."
    import shutil
    from conftest import no_training
    blocked = tmp_path / 'a file, not a folder'
    blocked.write_text('x')
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(blocked))
    ran = []

    @core.cached('toy')
    def toy(mode=None, seed=0):
        ran.append(seed)
    with pytest.raises(OSError, match=r'the results cache .* cannot be written .*ADAPTBOOK_CACHE'):
        toy(seed=0)
    assert ran == []
    with no_training(), pytest.raises(OSError, match=r'the zoo cache .* cannot be written'):
        zoo.pretrain('digits-mlp', seed=7, verbose=False)
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 10**5, 10**5))
    with no_training(), pytest.raises(OSError, match=r'the zoo output folder .* has 0 MB free, and this needs about 100 MB'):
        zoo.pretrain('digits-mlp', seed=7, verbose=False, out=tmp_path / 'out')
    X, y = torch.rand(40, 28, 28), torch.arange(40) % 4
    st = Z.ZappingSettings(pretrain_classes=4, pretrain_epochs=2, widths=(4, 4, 4), hidden=8)
    monkeypatch.setattr(Z, '_NETS', {})
    with no_training(), pytest.raises(OSError, match='the encoder cache .* MB free'):
        Z.pretrained('iid', 0, st, pretrain=(X, y, X, y))
    with pytest.raises(OSError, match='the results cache'):
        toy(seed=1)


def test_sizes_that_would_not_fit_are_refused_before_allocating(monkeypatch):
    "Kind 8: the option is named before any tensor of that size exists, and before any training."
    from conftest import no_training
    from adaptbook import kvb
    from adaptbook.models import PCAEncoder
    monkeypatch.setattr(core, 'memory_bytes', lambda: 8 * 2**30)            # the same on every machine: 8 GiB
    cases = [(lambda: kvb.KeyValueBottleneck(64, keys=10**9), r"codebooks × keys='64 × 1000000000' would need .* 8\.0 GiB"),
             (lambda: kvb.Codebooks(64, codebooks=10**7), r"codebooks × keys='10000000 × 256'"),
             (lambda: PCAEncoder(8).fit(torch.rand(2, 100_000)), r"input dimension=100000 would need 223\.5 GiB .*PCA"),
             (lambda: kvb.experiment('mnist', keys=(256, 10**9)), r"codebooks × keys='128 × 1000000000'")]
    for make, msg in cases:
        with no_training(), pytest.raises(ValueError, match=msg): make()
    monkeypatch.setattr(core, 'memory_bytes', lambda: None)                  # unknown memory: nothing refused
    assert kvb.Codebooks(8, codebooks=2, keys=4).keys.shape == (2, 4, 8)


# --- the one Store: every cache of the book is one, and each behaves the same way ---

def _stores():
    "Every store the library keeps, by where it lives (a new store is covered by being found here)."
    from adaptbook import models
    import adaptbook, importlib, pkgutil
    found = {}
    for m in pkgutil.iter_modules(adaptbook.__path__):
        if m.name.startswith('_'): continue
        mod = importlib.import_module(f'adaptbook.{m.name}')
        for k, v in vars(mod).items():
            if isinstance(v, core.Store): found[f'{m.name}.{k}'] = v
    assert models.FEATURES in found.values()
    return found


def test_every_cache_of_the_library_is_a_store_under_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    stores = _stores()
    assert {'core.RESULTS', 'models.FEATURES', 'models.ENCODERS', 'zapping.ENCODERS', 'zoo.USER'} <= set(stores)
    for name, s in stores.items():
        assert s.folder.is_relative_to(tmp_path), name        # ADAPTBOOK_CACHE moves every one of them
    assert len({s.folder for s in stores.values()}) == len(set(stores.values()))   # no two share a folder


TORCH_DAMAGE = {'truncated': lambda p: p.write_bytes(p.read_bytes()[:50]), 'empty': lambda p: p.write_bytes(b''),
                'not torch': lambda p: p.write_text('{"a": 1}'), 'foreign': lambda p: torch.save({'other': 1}, p)}


@pytest.mark.parametrize('damage', sorted(TORCH_DAMAGE))
def test_a_damaged_store_entry_is_computed_again_with_a_warning_and_rewritten_whole(tmp_path, damage):
    s = core.Store('things', folder=tmp_path)
    made = []
    make = lambda: made.append(1) or torch.arange(6.).reshape(2, 3)
    valid = lambda v: isinstance(v, torch.Tensor) and v.shape == (2, 3)
    a = s.get('t', {'x': 1}, make, valid=valid)
    assert s.get('t', {'x': 1}, make, valid=valid).equal(a) and made == [1]
    path, = tmp_path.glob('t-*.pt')
    TORCH_DAMAGE[damage](path)
    with pytest.warns(UserWarning, match='cannot be read'):
        b = s.get('t', {'x': 1}, make, valid=valid)
    assert b.equal(a) and made == [1, 1]
    assert s.get('t', {'x': 1}, make, valid=valid).equal(a) and made == [1, 1]     # rewritten whole
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith('.lock')) == [path.name]


def test_a_store_keys_by_its_parts_and_the_environment_and_serves_a_read_only_folder(tmp_path, monkeypatch):
    s = core.Store('things', folder=tmp_path)
    made = []
    make = lambda: made.append(1) or torch.zeros(1)
    s.get('t', {'x': 1}, make), s.get('t', {'x': 2}, make)
    assert made == [1, 1]
    monkeypatch.setattr(core, 'default_threads', lambda: 7)             # another thread count: another entry
    s.get('t', {'x': 1}, make)
    assert made == [1, 1, 1]
    monkeypatch.undo()
    def refuse(*a, **k): raise OSError(30, 'read-only file system')
    monkeypatch.setattr(core, 'check_writable', refuse)
    s.get('t', {'x': 1}, make)                                        # a hit needs no writable folder
    assert made == [1, 1, 1]
    with pytest.raises(OSError, match='read-only'):                   # a miss is refused before make() runs
        s.get('t', {'x': 3}, make)
    assert made == [1, 1, 1]


def test_two_threads_asking_for_one_entry_compute_it_once(tmp_path):
    import threading, time
    s = core.Store('things', folder=tmp_path)
    made, out = [], []
    def make():
        made.append(1)
        time.sleep(0.3)
        return torch.ones(2)
    ts = [threading.Thread(target=lambda: out.append(s.get('t', {}, make))) for _ in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert made == [1] and len(out) == 2 and all(o.equal(torch.ones(2)) for o in out)


@pytest.mark.parametrize('damage', sorted(TORCH_DAMAGE))
def test_damaged_cached_features_are_computed_again(tmp_path, monkeypatch, damage):
    from adaptbook import models
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    monkeypatch.setattr(models, '_FEATURES', {})
    X = torch.rand(10, 4)
    enc = nn_linear = torch.nn.Linear(4, 3)
    a = models.features(enc, X, key='toy-linear')
    path, = (tmp_path / 'features').glob('features-*.pt')
    TORCH_DAMAGE[damage](path)
    models._FEATURES.clear()
    with pytest.warns(UserWarning, match='cannot be read'):
        b = models.features(nn_linear, X, key='toy-linear')
    assert torch.equal(a, b)


def test_the_dataset_cache_follows_ADAPTBOOK_CACHE_and_still_finds_the_home_cache(tmp_path, monkeypatch):
    from adaptbook import data
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    monkeypatch.delenv('ADAPTBOOK_DATA', raising=False)
    monkeypatch.setattr(data, 'CACHE', None)
    assert data.data_cache() == tmp_path and data._target('mnist') == tmp_path / 'mnist'
    assert data.places()[-2:] == [tmp_path.resolve(), data.HOME_CACHE.resolve()]   # fetched before: still found
    monkeypatch.delenv('ADAPTBOOK_CACHE')
    assert data.data_cache() == data.HOME_CACHE and data.places()[-1] == data.HOME_CACHE.resolve()
