"Tests of the model zoo (adaptbook.zoo): recipes, shipped weights, provenance, the cache, ImageNet backbones."
import json

import pytest
import torch

from adaptbook import cli, zoo
from adaptbook.core import evaluate
from adaptbook.data import resolve


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty user cache."
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    return tmp_path


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_retrained_small_entry_reloads_bit_identical_with_its_recorded_accuracy(cache, monkeypatch, tmp_path):
    net = zoo.pretrain('digits-mlp', seed=0, mode='quick', verbose=False)
    with monkeypatch.context() as m:                 # the reload comes from the user cache, not the shipped copy
        m.setattr(zoo, 'shipped_dir', lambda: tmp_path / 'nothing-shipped')
        back = zoo.load('digits-mlp', seed=0, mode='quick', train=False)
    assert _same(net, back)
    rec = back.zoo_record
    _, _, Xte, yte = resolve('digits')
    assert evaluate(back, Xte, yte)['acc'] == rec['acc'] > 0.9
    for k in ('settings', 'seconds', 'examples', 'acc', 'sha256', 'signature', 'version'):
        assert k in rec, k
    assert rec['provenance']['torch'] == torch.__version__ and rec['provenance']['threads'] >= 1
    shipped = zoo._find('digits-mlp', 'quick', 0, zoo.get('digits-mlp').signature('quick'))
    if shipped is not None and zoo.shipped_dir() == shipped[0].parent:
        ship = zoo.load('digits-mlp', seed=0, mode='quick', train=False)
        p = ship.zoo_record['provenance']
        if p['torch'] == torch.__version__ and p.get('cpu') == torch.backends.cpu.get_cpu_capability():
            assert _same(net, ship), 'retraining the shipped entry on the same torch build and CPU must give the same bits'
        else:                                        # another build or CPU kernel (AVX2, AVX512...): another draw
            assert abs(ship.zoo_record['acc'] - rec['acc']) < 0.03


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not(cache, tmp_path):
    a = zoo.pretrain('digits-mlp', seed=1, verbose=False, out=tmp_path / 'a')
    b = zoo.pretrain('digits-mlp', seed=1, verbose=False, out=tmp_path / 'b')
    c = zoo.pretrain('digits-mlp', seed=2, verbose=False, out=tmp_path / 'c')
    assert _same(a, b) and not _same(a, c)
    assert a.zoo_record['sha256'] == b.zoo_record['sha256']


def test_a_damaged_cache_entry_is_not_used(cache):
    zoo.pretrain('digits-mlp', seed=3, verbose=False)
    pt = next((cache / 'zoo').glob('digits-mlp-*-s3-*.pt'))
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.warns(UserWarning, match='does not match its sha256'):
        assert zoo.record('digits-mlp', 3) is None
    assert not pt.exists()
    with pytest.raises(FileNotFoundError, match='adaptbook pretrain digits-mlp --mode quick --seed 3'):
        zoo.load('digits-mlp', seed=3, train=False)
    net = zoo.load('digits-mlp', seed=3, verbose=False)          # trained again
    assert net.zoo_record['acc'] > 0.9 and pt.exists()


def test_half_written_files_are_never_an_entry(cache):
    folder = cache / 'zoo'
    folder.mkdir()
    sig = zoo.get('digits-mlp').signature('quick')
    (folder / f'digits-mlp-quick-s4-{sig}.pt.tmp').write_bytes(b'partial')
    (folder / f'digits-mlp-quick-s4-{sig}.pt').write_bytes(b'no record beside me')
    assert zoo.record('digits-mlp', 4) is None


def test_bad_names_and_seeds_are_refused(cache):
    with pytest.raises(ValueError, match="name='nope' is not a zoo entry; entries: .*omniglot-iid-zap0"):
        zoo.load('nope')
    with pytest.raises(ValueError, match='seed=-1'):
        zoo.load('digits-mlp', seed=-1)
    with pytest.raises(TypeError, match='zoo.Recipe'):
        zoo.register('digits-mlp')


def test_cli_pretrain_trains_each_seed_once(cache, capsys):
    assert cli.main(['pretrain', 'digits-mlp', '--seed', '5', '--seeds', '2']) == 0
    assert len(list((cache / 'zoo').glob('digits-mlp-quick-s[56]-*.pt'))) == 2
    assert cli.main(['pretrain', 'digits-mlp', '--seed', '5', '--seeds', '2']) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum('found (trained earlier in' in line for line in out) == 2
    assert cli.main(['pretrain', 'nope']) == 2


SHIPPED = sorted(zoo.shipped_dir().glob('*.json'))


@pytest.mark.parametrize('path', SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_entry_matches_its_sha256_and_recipe(path):
    rec = json.loads(path.read_text())
    pt = path.with_suffix('.pt')
    assert zoo.sha256(pt) == rec['sha256'] and pt.stat().st_size == rec['bytes']
    r = zoo.get(rec['name'])
    assert rec['settings'] == json.loads(json.dumps(r.settings(rec['mode'])))
    assert rec['signature'] == r.signature(rec['mode']) and path.stem.endswith(rec['signature'])
    assert {'torch', 'adaptbook', 'threads', 'device'} <= set(rec['provenance'])
    assert rec['examples'] > 0 and rec['seconds'] > 0


def test_shipped_weights_are_a_few_megabytes():
    # 33 MB since issue #32 added the authors' kind of Omniglot network, pre-trained i.i.d. and by ASB (12 files of
    # 1.2 MB, most of it the 964-class pre-training head); a new entry that would take the zoo past 35 MB should ship
    # in quick size or not at all
    total = sum(p.stat().st_size for p in zoo.shipped_dir().glob('*'))
    assert total < 35e6, f'{total / 1e6:.1f} MB shipped'


def test_imagenet_backbone_names_the_missing_file_and_loads_from_the_hub_cache(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    with pytest.raises(FileNotFoundError, match=r'checkpoints/mobilenet_v3_small-\w+\.pth is missing'):
        zoo.imagenet('mobilenet_v3_small', hub_dir=tmp_path)
    with pytest.raises(ValueError, match="name='nope'"):
        zoo.imagenet('nope', hub_dir=tmp_path)
    w = torchvision.models.get_model_weights('mobilenet_v3_small').DEFAULT
    (tmp_path / 'checkpoints').mkdir()
    state = torchvision.models.get_model('mobilenet_v3_small', weights=None).state_dict()
    torch.save(state, tmp_path / 'checkpoints' / w.url.split('/')[-1])
    net, tf = zoo.imagenet('mobilenet_v3_small', hub_dir=tmp_path)
    assert not net.training and torch.equal(net.state_dict()['classifier.3.weight'], state['classifier.3.weight'])
    x = tf(torch.rand(3, 100, 80))
    assert x.shape == (3, 224, 224)
    assert net(x[None]).shape == (1, 1000)


def test_shipped_weights_load_from_an_unwritable_cache_and_training_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv('ADAPTBOOK_CACHE', '/proc/not-writable')
    net = zoo.load('digits-mlp', seed=0, train=False)              # shipped: no lock, no cache needed
    assert net.zoo_record['where'] == str(zoo.shipped_dir())
    with pytest.raises(OSError, match='not writable.*ADAPTBOOK_CACHE'):
        zoo.load('digits-mlp', seed=9, verbose=False)
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path))
    with pytest.warns(UserWarning, match="'digits-mlp' .*neither shipped nor cached: training it now"):
        zoo.load('digits-mlp', seed=9, verbose=False)


def test_table_and_imagenet_refuse_bad_arguments_clearly():
    assert zoo.table('quick', seeds=0, trained_only=True).count('digits-mlp') == 1
    with pytest.raises(ValueError, match='seed=-1'):
        zoo.table(seeds=(-1,))
    with pytest.raises(TypeError, match='name=3'):
        zoo.imagenet(3)


# --- the code that makes an entry (issue #33, kind 1) ---

def test_a_recipes_code_ignores_docstrings_and_comments_and_follows_a_computing_line(tmp_path, monkeypatch):
    import importlib, sys
    monkeypatch.syspath_prepend(str(tmp_path))
    bodies = {'a': '"one"\n    return x + 1', 'b': '"two, reworded"\n    # a comment\n    return x + 1',
              'c': '"one"\n    return x + 2'}
    digest = {}
    for k, body in bodies.items():
        (tmp_path / f'recipe_{k}.py').write_text(f'def train(x):\n    {body}\n')
        digest[k] = zoo._code_digest([importlib.import_module(f'recipe_{k}').train])
        sys.modules.pop(f'recipe_{k}')
    assert digest['a'] == digest['b'] != digest['c']
    src = (tmp_path / 'recipe_c.py').read_text()                      # an older commit's text, found by name
    assert zoo._code_digest([importlib.import_module('recipe_a').train], lambda m: src) == digest['c']


def test_a_cached_entry_trained_by_other_code_is_trained_again(cache, monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, 'shipped_dir', lambda: tmp_path / 'nothing-shipped')
    zoo.pretrain('digits-mlp', seed=3, verbose=False)
    js, = (cache / 'zoo').glob('digits-mlp-*-s3-*.json')
    rec = json.loads(js.read_text())
    assert rec['code'] == zoo.get('digits-mlp').code()
    js.write_text(json.dumps(rec | {'code': 'older code'}))
    with pytest.warns(UserWarning, match='other code'):
        net = zoo.load('digits-mlp', seed=3, verbose=False)
    assert net.zoo_record['code'] == zoo.get('digits-mlp').code()
    js.write_text(json.dumps({k: v for k, v in json.loads(js.read_text()).items() if k != 'code'}))
    with pytest.warns(UserWarning, match='other code'):                # trained before records named their code
        zoo.load('digits-mlp', seed=3, verbose=False)


CHECKED = [js for js in SHIPPED if 'code' in json.loads(js.read_text())]


def test_shipped_entries_that_name_their_code_are_made_by_todays_code():
    "Change a recipe's code and this fails until its shipped entries are retrained (`--ship --force`) or checked."
    names = {json.loads(js.read_text())['name'] for js in CHECKED}
    assert {'digits-mlp', 'aft-student', 'omniglot-asb-zap0-in', 'omniglot-asb-zap1-in'} <= names   # not vacuous
    stale = [js.name for js in CHECKED if json.loads(js.read_text())['code'] != zoo.get(json.loads(js.read_text())['name']).code()]
    assert not stale, f"shipped entries trained by other code than today's recipes: {stale}; retrain them with " \
                      "`adaptbook pretrain NAME --seed S --ship --force`, or check them with tools/zoo_code.py --verify"


def test_a_shipped_entry_of_other_code_warns_with_the_command_that_retrains_it(monkeypatch):
    monkeypatch.setattr(zoo.Recipe, 'code', lambda self: 'today')
    with pytest.warns(UserWarning, match='--ship --force'):
        net = zoo.load('digits-mlp', seed=0, mode='quick', train=False)
    assert net.zoo_record['where'] == str(zoo.shipped_dir())
