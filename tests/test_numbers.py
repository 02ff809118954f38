"""One check for every number (issue #33, kind 3): the training helpers refuse a bad number naming the argument,
whichever door it came in by, and every sweep refuses a repeated value, before any training."""
import math

import pytest
import torch
from torch import nn

from adaptbook import core
from conftest import no_training

BAD_FIT = [('lr', math.nan, 'lr=nan'), ('lr', 0.0, 'lr=0.0'), ('lr', math.inf, 'lr=inf'), ('lr', '1e-3', "lr='1e-3'"),
           ('epochs', '3', "epochs='3'"), ('epochs', 3.0, 'epochs=3.0'), ('epochs', 0, 'epochs=0'),
           ('bs', 2.5, 'bs=2.5'), ('bs', 0, 'bs=0'), ('bs', True, 'bs=True'),
           ('clip', math.inf, 'clip=inf'), ('clip', 0.0, 'clip=0.0'), ('clip', -1.0, 'clip=-1.0'),
           ('weight_decay', -1.0, 'weight_decay=-1.0'), ('weight_decay', math.nan, 'weight_decay=nan')]

@pytest.mark.parametrize('opt', ['adam', 'sgd'])
@pytest.mark.parametrize('arg,value,said', BAD_FIT, ids=[f'{a}={v!r}' for a, v, _ in BAD_FIT])
def test_fit_refuses_a_bad_number_naming_it(opt, arg, value, said):
    X, y = torch.randn(8, 3), torch.arange(8) % 2
    with no_training(), pytest.raises(ValueError, match=f'^{said.replace("(", "[(]")} must be'):
        core.fit(nn.Linear(3, 2), X, y, verbose=False, opt=opt, **{arg: value})

def test_the_messages_say_what_is_allowed():
    with pytest.raises(ValueError, match=r'weight_decay=-1.0 must be in \[0, inf\)'):
        core.fit(nn.Linear(3, 2), torch.randn(4, 3), torch.arange(4) % 2, verbose=False, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r'clip=0.0 must be in \(0, inf\)'):
        core.check_number('clip', 0.0, 0, None, lo_open=True)

@pytest.mark.parametrize('clip', [math.inf, 0.0, 'x'])
def test_train_step_refuses_a_bad_clip(clip):
    net = nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net.weight.detach().clone()
    with pytest.raises(ValueError, match='clip='):
        core.train_step(opt, net(torch.randn(4, 3)).sum(), core.Ledger(), 4, clip=clip)
    assert torch.equal(net.weight, before)                      # refused before the step

def _blobs():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 4
    return torch.randn(60, 2, generator=g) + 3 * torch.stack([y % 2, y // 2], 1).float(), y

REPEATS = [('kprior', dict(memory=(0.1, 0.1)), 'memory='), ('kprior', dict(methods=('kprior', 'kprior')), 'methods='),
           ('kvb', dict(keys=(16, 16), encoder='identity'), 'keys='), ('piggyback', dict(thresholds=(0.005, 0.005)), 'thresholds='),
           ('aft', dict(beta=(1.0, 1.0)), 'beta='), ('intro', dict(methods=('retrain', 'retrain')), 'methods=')]

@pytest.mark.parametrize('chapter,kw,said', REPEATS, ids=[f'{c}-{list(k)[0]}' for c, k, _ in REPEATS])
def test_a_sweep_refuses_a_repeated_value_before_training(chapter, kw, said):
    import importlib
    X, y = _blobs()
    exp = importlib.import_module(f'adaptbook.{chapter}').experiment
    with no_training(), pytest.raises(ValueError, match=f'{said}.* repeats .*give each value once'):
        exp((X, y, X, y), **kw)

def test_repeats_are_told_apart_from_equal_looking_values():
    assert core.as_tuple('widths', (16, 16), unique=False) == (16, 16)      # an architecture, not a sweep
    assert core.as_tuple('x', (1, True)) == (1, True)                         # True is not the number 1 here
    with pytest.raises(ValueError, match='repeats 2.0'): core.as_tuple('x', (2, 2.0))
    assert core.as_tuple('x', ([1], [2])) == ([1], [2])


def test_results_from_json_reads_text_and_byte_order_marks(tmp_path):
    res = core.Results([{'acc': 0.5}], {'k': 1})
    p = tmp_path / 'r.json'
    res.to_json(p)
    (tmp_path / 'bom.json').write_bytes(b'\xef\xbb\xbf' + p.read_bytes())
    for src in (p, str(p), tmp_path / 'bom.json', p.read_text(), '\ufeff' + p.read_text()):
        assert core.Results.from_json(src).rows == [{'acc': 0.5}]
    with pytest.raises(ValueError, match='the JSON text given is not JSON'): core.Results.from_json('[1, 2')
    with pytest.raises(ValueError, match="expects an object with 'rows'"): core.Results.from_json('[1, 2]')
    (tmp_path / 'bad.json').write_text('{oops')
    with pytest.raises(ValueError, match='bad.json is not JSON'): core.Results.from_json(tmp_path / 'bad.json')
    with pytest.raises(FileNotFoundError): core.Results.from_json(tmp_path / 'missing.json')


def test_threads_asked_for_are_used_recorded_and_resumed(tmp_path, monkeypatch):
    "`--threads 2` (an enclosing `threads(2)`) computes with 2 threads, records 2, and a resumed run finds it."
    monkeypatch.delenv('ADAPTBOOK_THREADS', raising=False)
    monkeypatch.setenv('ADAPTBOOK_CACHE', str(tmp_path / 'cache'))

    @core.pin_threads
    def used(): return torch.get_num_threads()
    assert used() == 1
    with core.threads(2): assert used() == 2
    from adaptbook import cli
    p = cli.run_experiment('intro', 'quick', tmp_path, verbose=False, threads=2)['json']
    assert core.Results.from_json(p).meta['provenance']['threads'] == 2
    assert cli._fresh('intro', p, 'quick', None, threads=2) and not cli._fresh('intro', p, 'quick', None, threads=1)
