"""`exercises.check`: a student's right answer passes, a wrong one fails saying what is wrong (shape, values, gradient,
an exception) without printing the expected values. The right answers here are written from the exercise texts, not
copied from the library."""
import math

import pytest
import torch
import torch.nn.functional as F

from adaptbook.exercises import EXERCISES, check, exercise


# --- answers a student could write from the task texts ---------------------------------------------------------------

def kprior_gradient(X, w, w_star, delta):
    return X.T @ (torch.sigmoid(X @ w) - torch.sigmoid(X @ w_star)) + delta * (w - w_star)

def memorability(P):
    return (P * (1 - P)).sum(1)

def zap(layer, rows):
    layer.weight[rows] = torch.randn(len(rows), layer.in_features) * math.sqrt(2 / layer.in_features)

def lstsq_readout(Z, y, ridge):
    Z1 = torch.cat([Z.double(), torch.ones(len(Z), 1, dtype=torch.float64)], 1)
    Y = F.one_hot(y).double()
    A = Z1.T @ Z1
    B = torch.linalg.solve(A + ridge * A.trace() / A.shape[0] * torch.eye(A.shape[0], dtype=torch.float64), Z1.T @ Y)
    return B[:-1].T, B[-1]

def binarize(scores, threshold):
    hard = (scores > threshold).to(scores.dtype)
    return hard + scores - scores.detach()

def masked_linear(x, weight, scores, threshold, bias):
    return x @ (weight * binarize(scores, threshold)).T + bias

def centred_kernel(Z):
    Zc = Z - Z.mean(0)
    Zn = Zc / Zc.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return Zn @ Zn.T

def aft_regularizer(phi, psi, rho):
    D = centred_kernel(phi) - centred_kernel(psi * rho)
    return ((D ** 2).mean() + 1e-8).sqrt()

def key_lookup(h, keys):
    d = ((h[:, :, None, :] - keys[None]) ** 2).sum(-1)          # N×C×J
    return d.argmin(-1)

def fetch(idx, values):
    C = values.shape[0]
    return values[torch.arange(C)[None, :], idx]

def _f32_readout(Z, y, ridge):
    Z1 = torch.cat([Z.float(), torch.ones(len(Z), 1)], 1)
    Y, A = F.one_hot(y).float(), Z1.T @ Z1
    B = torch.linalg.solve(A + ridge * A.trace() / A.shape[0] * torch.eye(A.shape[0]), Z1.T @ Y)
    return B[:-1].T, B[-1]

RIGHT = dict(kprior_gradient=kprior_gradient, memorability=memorability, zap=zap, lstsq_readout=lstsq_readout,
             binarize=binarize, masked_linear=masked_linear, centred_kernel=centred_kernel,
             aft_regularizer=aft_regularizer, key_lookup=key_lookup, fetch=fetch)


def test_every_exercise_has_a_right_answer_that_passes():
    assert sorted(RIGHT) == sorted(EXERCISES)
    for name, fn in RIGHT.items():
        r = check(name, fn, quiet=True)
        assert r and r.ok, repr(r)


WRONG = [   # (exercise, a wrong answer, what the verdict must say)
    ('kprior_gradient', lambda X, w, ws, d: X.T @ (torch.sigmoid(X @ w) - torch.sigmoid(X @ ws)), 'wrong values'),
    ('kprior_gradient', lambda X, w, ws, d: w - ws, 'wrong values'),
    ('kprior_gradient', lambda X, w, ws, d: (X @ w)[:, None], 'shape'),
    ('memorability', lambda P: (P * (1 - P)).sum(0), 'shape'),
    ('memorability', lambda P: (P * (1 - P)).mean(1), 'wrong values'),
    ('memorability', lambda P: (P * (1 - P)).sum(1).tolist(), 'torch.Tensor'),
    ('zap', lambda layer, rows: None, 'kept their old values'),
    ('zap', lambda layer, rows: torch.nn.init.normal_(layer.weight, std=math.sqrt(2 / layer.in_features)), 'other rows'),
    ('zap', lambda layer, rows: (zap(layer, rows), layer.bias.zero_()), 'bias'),
    ('zap', lambda layer, rows: layer.weight.__setitem__(rows, torch.randn(len(rows), layer.in_features)), 'std'),
    ('zap', lambda layer, rows: setattr(layer, 'weight', torch.nn.Parameter(layer.weight.clone().normal_(0, math.sqrt(2 / layer.in_features)))), 'new tensor'),
    ('zap', lambda layer, rows: layer.weight.__setitem__(rows, layer.weight[rows] * math.sqrt(6)), 'follow the old'),
    ('zap', lambda layer, rows: layer.weight.__setitem__(rows, (torch.rand(len(rows), layer.in_features) - .5) * math.sqrt(24 / layer.in_features)), 'normally distributed'),
    ('zap', lambda layer, rows: layer.weight.__setitem__(rows, torch.randn(1, layer.in_features).expand(len(rows), -1) * math.sqrt(2 / layer.in_features)), 'alike'),
    ('lstsq_readout', lambda Z, y, r: lstsq_readout(Z, y, 0.0), 'wrong values'),
    ('lstsq_readout', lambda Z, y, r: lstsq_readout(Z, y, r * (Z.shape[1] + 1) / Z.shape[1]), 'wrong values'),   # trace/d
    ('lstsq_readout', lambda Z, y, r: tuple(t.numpy() for t in lstsq_readout(Z, y, r)), 'torch tensors'),
    ('lstsq_readout', lambda Z, y, r: lstsq_readout(Z, y, r)[0], 'tuple'),
    ('binarize', lambda s, t: (s > t).to(s.dtype), 'no gradient'),
    ('binarize', lambda s, t: (s >= 0).to(s.dtype) + s - s.detach(), 'wrong values'),
    ('binarize', lambda s, t: torch.sigmoid((s - t) * 1e6), 'wrong values'),       # 0.5 at the threshold
    ('binarize', lambda s, t: (s > t).to(s.dtype) + 2 * (s - s.detach()), 'gradient'),
    ('binarize', lambda s, t: (s >= t).to(s.dtype) + s - s.detach(), 'wrong values'),   # >= switches the tie on
    ('binarize', lambda s, t: (s > t).double() + s - s.detach(), 'dtype'),
    ('binarize', lambda s, t: (s > t).float() + (s - s.detach()).float(), 'dtype'),
    ('masked_linear', lambda x, W, s, t, b: x @ W.T + b, 'wrong values'),
    ('masked_linear', lambda x, W, s, t, b: x @ (W * (s > t).float()).T + b, 'no gradient'),
    ('masked_linear', lambda x, W, s, t, b: x @ (W * ((s >= t).float() + s - s.detach())).T + b, 'wrong values in'),  # the >= slip
    ('centred_kernel', lambda Z: F.normalize(Z, dim=1) @ F.normalize(Z, dim=1).T, 'wrong values'),
    ('centred_kernel', lambda Z: (Z - Z.mean(0)) @ (Z - Z.mean(0)).T, 'wrong values'),
    ('centred_kernel', lambda Z: centred_kernel(Z).detach(), 'no gradient'),
    ('aft_regularizer', lambda phi, psi, rho: aft_regularizer(phi, psi, torch.ones_like(rho)), 'no gradient reaches rho'),
    ('aft_regularizer', lambda phi, psi, rho: ((centred_kernel(phi) - centred_kernel(psi * rho)) ** 2).mean().sqrt(), 'R'),
    ('lstsq_readout', _f32_readout, 'wrong values'),                         # float32 is not precise enough
    ('aft_regularizer', lambda phi, psi, rho: aft_regularizer(phi, psi, rho.detach()), 'rho'),
    ('key_lookup', lambda h, keys: ((h[:, :, None, :] - keys[None]) ** 2).sum(-1).argmax(-1), 'not the nearest'),
    ('key_lookup', lambda h, keys: (h[:, :, None, :] * keys[None]).sum(-1).argmax(-1), 'not the nearest'),
    ('key_lookup', lambda h, keys: key_lookup(h, keys).float(), 'dtype'),
    ('fetch', lambda idx, values: values[idx], 'shape'),
    ('fetch', lambda idx, values: fetch(idx, values).detach(), 'no gradient'),
    ('fetch', lambda idx, values: values[torch.arange(values.shape[0])[None, :], idx.flip(0)], 'wrong values'),
]


@pytest.mark.parametrize('name,fn,says', WRONG, ids=[f'{n}-{i}' for i, (n, _, _) in enumerate(WRONG)])
def test_a_wrong_answer_fails_and_says_what_is_wrong(name, fn, says):
    r = check(name, fn, quiet=True)
    assert not r and not r.ok and says in r.message, repr(r)


def test_the_verdict_never_prints_the_expected_values(capsys):
    def off_by_one(P): return (P * (1 - P)).sum(1) + 1.0
    r = check('memorability', off_by_one)
    out = capsys.readouterr().out
    assert out.startswith('✗ memorability: case 1:') and 'the largest difference, 1, is at index' in out
    assert 'yours is too large' in out and 'wrong values in' in out        # where, and which sign
    P = EXERCISES['memorability'].cases(0)['P']
    for v in (P * (1 - P)).sum(1)[:3]:                        # none of the right scores appears in the message
        assert f'{v.item():.3g}' not in r.message


def test_stubs_exceptions_and_bad_arguments():
    def stub(*a): raise NotImplementedError
    assert 'not written yet' in check('fetch', stub, quiet=True).message
    def broken(idx, values): return values.reshape(-1)[idx.unknown]
    r = check('fetch', broken, quiet=True)
    assert not r and 'AttributeError' in r.message and 'idx.unknown' in r.message
    r = check('centred_kernel', lambda Z: centred_kernel(Z).to_sparse(), quiet=True)   # torch fails on what it returned
    assert not r and 'could not be checked' in r.message and 'not written yet' not in r.message
    r = check('fetch', lambda idx: idx, quiet=True)                            # the wrong number of arguments
    assert not r and 'could not be called' in r.message and 'fetch(idx, values)' in r.message
    with pytest.raises(ValueError, match="name='fecth'"): check('fecth', fetch)
    with pytest.raises(TypeError, match='fn must be a function'): check('fetch', 3)
    with pytest.raises(ValueError, match='choose one of'): exercise('nope')
    assert 'key_lookup(h, keys)' in exercise('key_lookup')


def test_check_leaves_the_callers_rng_and_grad_mode_alone():
    torch.manual_seed(123)
    want = torch.randn(3)
    torch.manual_seed(123)
    with torch.no_grad():                                   # a student's notebook in no_grad still gets a fair check
        assert check('binarize', binarize, quiet=True) and check('zap', zap, quiet=True)
    assert torch.equal(torch.randn(3), want)


def test_verdicts_repeat():
    assert repr(check('binarize', binarize, quiet=True)) == repr(check('binarize', binarize, quiet=True))
    assert check('kprior_gradient', lambda X, w, ws, d: w, quiet=True).message == \
        check('kprior_gradient', lambda X, w, ws, d: w, quiet=True).message


# --- the chapters: an Exercises section, checked ones with a stub and a folded solution, the reading order -----------

ROOT = __import__('pathlib').Path(__file__).resolve().parent.parent
CHAPTERS = ['10_kprior', '20_zapping', '30_piggyback', '40_aft', '50_kvb']


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_every_method_chapter_has_exercises_that_teach_in_the_reading_order(chapter):
    import json, re
    from adaptbook.exercises import CHANGES, PREDICTIONS
    cells = json.loads((ROOT / 'nbs' / f'{chapter}.ipynb').read_text())['cells']
    src = [''.join(c['source']) for c in cells]
    h2 = [(i, s.splitlines()[0]) for i, s in enumerate(src) if cells[i]['cell_type'] == 'markdown' and s.startswith('## ')]
    order = [t for _, t in h2]
    at = lambda pat: next(k for k, t in enumerate(order) if re.match(pat, t))
    # idea -> method -> experiment -> exercises -> summary -> what to try -> references, and nothing to read after them
    assert at(r'## \d+ Retrain vs adapt') < at('## Exercises') < at(r'## \d+ Summary') < at(r'## \d+ What to try') \
        < at(r'## \d+ References'), order
    refs = h2[at(r'## \d+ References')][0]
    notes = next((i for i, t in h2 if t.startswith('## Implementation notes')), len(src))   # the plumbing's appendix
    assert all(cells[i]['cell_type'] == 'code' and '#| hide' in src[i] for i in range(refs + 1, notes)), \
        'a section to read sits between the references and the implementation notes'
    start = h2[at('## Exercises')][0]
    end = next(i for i, _ in h2 if i > start)
    heads = [i for i in range(start, end) if re.match(r'### Exercise \d+', src[i])]
    kind = {i: ('predict' if 'predict, then run' in src[i].splitlines()[0] else
                'change' if 'change the experiment' in src[i].splitlines()[0] else
                'checked' if '(checked)' in src[i].splitlines()[0] else 'question') for i in heads}
    count = {k: sum(v == k for v in kind.values()) for k in ('checked', 'question', 'predict', 'change')}
    assert count['checked'] >= 2 and count['question'] >= 2 and count['predict'] >= 1 and count['change'] >= 1, count
    for i, k in kind.items():
        stub, sol = src[i + 1], src[i + 2]
        outs = ''.join(''.join(o.get('text', [])) for o in cells[i + 1].get('outputs', []))
        if k == 'checked':         # a stub that raises NotImplementedError and calls check, then a folded solution
            name = re.search(r"check\('(\w+)'", stub).group(1)
            assert name in EXERCISES and 'raise NotImplementedError' in stub
            assert sol.startswith('#| code-fold: true') and f"assert check('{name}'" in sol
            assert not outs or 'not written yet' in outs     # the stored run shows the stub's verdict
        elif k == 'predict':       # a guess of None (so the stored page reveals nothing), the answer folded in <details>
            name = re.search(r"predict\('(\w+)', guess\)", stub).group(1)
            assert name in PREDICTIONS and 'guess = None' in stub
            assert all(f'({c})' in src[i] for c in PREDICTIONS[name].choices), 'the question lists every choice'
            assert not outs or 'nothing was run' in outs
            assert sol.startswith('#| code-fold: true') and f"outcome('{name}')" in sol and '<details>' in sol
        elif k == 'change':        # a stub that checks None, then a folded solution that passes the check
            name = re.search(r"check_experiment\('(\w+)', res_change\)", stub).group(1)
            assert name in CHANGES and 'res_change = None' in stub
            assert not outs or 'not run yet' in outs
            assert sol.startswith('#| code-fold: true') and f"assert check_experiment('{name}', res_change)" in sol
        else:                      # a question with its answer folded below
            assert '<details>' in src[i] and '<summary>Answer</summary>' in src[i]


def test_reading_order_puts_the_chapters_before_the_library():
    import yaml
    items = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    flat = [j for i in items for j in (i.get('contents', []) if isinstance(i, dict) else [i])]
    assert flat.index('05_intro.ipynb') < flat.index('10_kprior.ipynb') < flat.index('00_core.ipynb')
    assert flat.index('90_compare.ipynb') < flat.index('00_core.ipynb')
    appendix = next(i for i in items if isinstance(i, dict))
    assert appendix['section'] == 'How the library works' and '08_exercises.ipynb' in appendix['contents']


# --- the student's code cannot hang the check or end it (issue #33, kind 4) ---

def _forever(scores, threshold):
    while True: pass

def _sleeps(scores, threshold):
    import time
    time.sleep(3600)

def _exits(scores, threshold):
    import sys
    sys.exit(3)

def _swallows(scores, threshold):
    while True:
        try:
            while True: pass
        except Exception: pass                      # a student's blanket except cannot keep the case running

@pytest.mark.parametrize('fn,said', [(_forever, 'did not finish within 0.5 s'), (_sleeps, 'did not finish within 0.5 s'),
                                     (_swallows, 'did not finish within 0.5 s'), (_exits, 'called exit(3)')])
def test_a_student_function_that_hangs_or_exits_is_a_verdict(fn, said):
    r = check('binarize', fn, quiet=True, time_limit=0.5)
    assert not r and said in r.message, r

def test_the_time_limit_holds_outside_the_main_thread_too():
    "A notebook runner may run cells in a worker thread, where no timer signal can be set."
    import threading
    out = {}
    th = threading.Thread(target=lambda: out.setdefault('r', check('binarize', _forever, quiet=True, time_limit=0.5)))
    th.start()
    th.join(60)                                     # a hang guard, not a timing assert
    assert not th.is_alive() and 'did not finish' in out['r'].message

@pytest.mark.parametrize('bad', [0, -1.0, float('nan'), float('inf'), '5', True])
def test_a_bad_time_limit_is_refused(bad):
    with pytest.raises(ValueError, match='time_limit='): check('binarize', _forever, time_limit=bad)


def test_predict_runs_nothing_without_a_guess_and_check_experiment_names_what_differs(monkeypatch):
    from adaptbook import exercises as E, kprior
    ran = []
    monkeypatch.setitem(E.PREDICTIONS, 'toy', E.Prediction('toy', {'a': 'up', 'b': 'down'}, lambda: ran.append(1) or ('b', 'it went down')))
    r = E.predict('toy', None, quiet=True)
    assert not r and 'nothing was run' in r.message and ran == []
    with pytest.raises(ValueError, match="guess='c'"): E.predict('toy', 'c')
    assert ran == []
    assert E.predict('toy', 'b', quiet=True) and ran == [1]
    r = E.predict('toy', 'a', quiet=True)
    assert not r and r.message.startswith('the run says (b) down, not (a)')
    assert E.outcome('toy') == '(b) down: it went down'
    with pytest.raises(ValueError, match="name='toys'"): E.outcome('toys')
    assert 'not run yet' in E.check_experiment('kprior_random_memory', None, quiet=True).message
    assert 'got dict' in E.check_experiment('kprior_random_memory', {}, quiet=True).message
    r = E.check_experiment('kprior_random_memory', kprior.experiment('a7a', subset=0.01, select='random', memory=(0.02, 0.5)), quiet=True)
    assert not r and "memory fractions is [0.02, 0.5], the task asks for [0.02, 1.0]" in r.message
    r = E.check_experiment('kprior_random_memory', kprior.experiment('a7a', subset=0.02, select='random', memory=(0.02, 1.0)), quiet=True)
    assert not r and 'old rows' in r.message
