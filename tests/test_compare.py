"""The comparison chapter's building blocks on made-up chapter results: each method against its own reference (no
stand-in row), setup costs, the chart's markers inside its axes, curves on one scale, and prose rendered from the
numbers (its comparison words flip when the numbers do)."""
import matplotlib
from matplotlib.collections import PathCollection
import numpy as np
import pytest

matplotlib.use('Agg')
from adaptbook import compare as C  # noqa: E402
from adaptbook.core import Results  # noqa: E402


def _r(method, role, acc, seed, ex, sb=0, **kw):
    curve = dict(curve_examples=[0, ex // 4, ex], curve_acc=[0.1, (0.1 + acc) / 2, acc], curve_seconds=[0, .1, .4])
    return dict(method=method, role=role, acc=acc, seed=seed, examples=ex, seconds=ex / 1000, state_bytes=sb,
                **(curve if role != 'setup' else {}), **kw)


def fake(k2=0.80, rp2=0.78, lin=0.20, ft=0.97, seeds=(0, 1, 2)) -> dict:
    "Results for the five chapters, 3 seeds; the keyword values move one comparison each."
    rows = {n: [] for n in C.HEADLINES}
    for s in seeds:
        e = 0.001 * s
        rows['kprior'] += [_r('batch', 'retrain', .82, s, 2000, 4000), _r('batch_warm', 'retrain', .82, s, 1300, 4000),
                           _r('wstar', 'baseline', .81 + e, s, 0), _r('kprior', 'adapt', .815 + e, s, 300, 400, memory=.1),
                           _r('kprior', 'adapt', .82, s, 2500, 4000, memory=1.0), _r('kprior', 'adapt', k2, s, 200, 80, memory=.02),
                           _r('replay', 'baseline', rp2, s, 200, 80, memory=.02),
                           _r('replay_random', 'baseline', .70, s, 200, 80, memory=.02)]
        z = dict(pretraining='iid')
        rows['zapping'] += [_r('iid/seq_head', 'baseline', .05 + e, s, 5000, zap_every=0, **z),
                            _r('iid/seq_head', 'adapt', .06 + e, s, 5000, zap_every=1, **z),
                            _r('iid/iid_head', 'baseline', .84, s, 9000, zap_every=0, **z),
                            _r('iid/iid_head', 'adapt', .85, s, 9000, zap_every=1, **z),
                            _r('scratch', 'retrain', .88, s, 90000, 10 ** 6, zap_every=None, pretraining=None),
                            _r('pretrain', 'setup', .9, s, 10 ** 6, zap_every=1, **z),
                            _r('pretrain', 'setup', .9, s, 7 * 10 ** 6, zap_every=1, pretraining='asb')]
        rows['piggyback'] += [_r('base', 'setup', .87, s, 30000, threshold=None),
                              _r('piggyback', 'adapt', .94 + e, s, 30000, 38000, threshold=5e-3, acc_old_before=.99,
                                 acc_old_after=.99, old_identical=True, bits_per_weight=1.0),
                              _r('scratch', 'retrain', .95, s, 30000, 10 ** 6, threshold=None, acc_old_before=.99,
                                 acc_old_after=.99),
                              _r('individual', 'baseline', .96, s, 30000, 10 ** 6, threshold=None, acc_old_before=.99,
                                 acc_old_after=.99),
                              _r('finetune', 'baseline', ft, s, 30000, 5000, threshold=None, acc_old_before=.99,
                                 acc_old_after=.90),
                              _r('classifier', 'baseline', .66, s, 30000, 5000, threshold=None, acc_old_after=.99)]
        teacher = C.HEADLINES['aft']['where'].get('teacher')
        t = {'teacher': teacher} if teacher else {}
        c = {'chosen': True} if 'chosen' in C.HEADLINES['aft']['where'] else {}
        for n in (100, 500):
            rows['aft'] += [_r('stl', 'retrain', .70 + n / 10 ** 4, s, 1000 * n, beta=None, n_labels=n, **c),
                            _r('aft', 'adapt', .72 + n / 10 ** 4 + e, s, 1000 * n, 9000, beta=10, n_labels=n, **t, **c),
                            _r('kd', 'baseline', .71 + n / 10 ** 4, s, 1000 * n, 9000, beta=10, n_labels=n, **t, **c),
                            _r('teacher_features', 'setup', float('nan'), s, n, 9000, beta=None, n_labels=n, **t)]
        rows['kvb'] += [_r('kvb', 'adapt', .80 + e, s, 4000, keys=4096), _r('retrain', 'retrain', .90, s, 80000, 10 ** 6, keys=4096),
                        _r('linear', 'baseline', lin, s, 4000, keys=None), _r('ncm', 'baseline', .78, s, 4000, keys=None),
                        _r('replay', 'baseline', .75, s, 4000, 9000, keys=4096)]
    knobs = dict(kprior='memory', zapping='zap_every', piggyback='threshold', aft='beta', kvb='keys')
    return {n: Results(r, {'knob': knobs[n], 'n_classes': 50}) for n, r in rows.items()}


def test_each_method_against_its_own_reference_with_setup():
    res = fake()
    S = {r['chapter']: r for r in C.summarize(res)}
    assert {n: S[n]['reference'] for n in S} == {n: h['reference'] for n, h in C.HEADLINES.items()}
    assert S['kprior']['reference'] == 'batch' and S['kprior']['examples_ratio'] == pytest.approx(300 / 2000)
    assert S['piggyback']['reference'] == 'individual' and S['piggyback']['examples_ratio'] == pytest.approx(1.0)
    assert S['piggyback']['retrain_acc'] == pytest.approx(.96)     # the paper's reference, not training from scratch
    assert S['aft']['retrain_acc'] == pytest.approx(.75) and S['aft']['setup_examples'] == 500  # the 500-label STL only
    assert S['zapping']['setup_examples'] == 10 ** 6 and S['zapping']['setup_ratio'] == pytest.approx(200)
    assert S['kvb']['reference_state_bytes'] == 10 ** 6 and S['kvb']['state_bytes'] == 0
    assert S['kprior']['seconds_ratio_sd'] == 0.0                 # float noise over equal seeds is no spread
    # a missing reference is an error; no other row stands in for it
    no_ref = Results([r for r in res['piggyback'] if r['method'] != 'individual'], res['piggyback'].meta)
    with pytest.raises(ValueError, match="no 'individual' row"):
        C.summarize({'piggyback': no_ref})
    with pytest.raises(ValueError, match="chapter='nope'"):
        C.headline_pairs('nope', res['kvb'])


def test_chart_keeps_every_marker_inside_its_axes_and_uses_one_cost_unit():
    fig = C.figure(C.summarize(fake()))
    ax, = fig.axes
    assert 'examples' in ax.get_xlabel() and 'seconds' not in ax.get_xlabel()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    markers = [c for c in ax.collections if isinstance(c, PathCollection)]      # the scatter markers, not error bars
    pts = np.concatenate([c.get_offsets() for c in markers])
    assert len(pts) >= 5 + 2                                     # five methods, two hollow setup markers
    assert (pts[:, 0] > x0).all() and (pts[:, 0] < x1).all() and (pts[:, 1] > y0).all() and (pts[:, 1] < y1).all()
    # in display space each marker's centre sits at least its radius from the axes' edge
    box = ax.get_window_extent()
    for c in markers:
        for (px, py), s in zip(ax.transData.transform(c.get_offsets()), np.broadcast_to(c.get_sizes(), len(c.get_offsets()))):
            rad = np.sqrt(s) / 2 * fig.dpi / 72
            assert box.x0 + rad <= px <= box.x1 - rad and box.y0 + rad <= py <= box.y1 - rad
    with pytest.raises(ValueError, match='empty'):
        C.figure(Results())


def test_the_chart_draws_points_of_one_cost_apart_reads_plainly_and_names_each_method_once():
    "Issue #34's figure defects, each a check: stacked points and labels, '−10⁰' ticks, discs that hide the bars."
    S = C.summarize(fake())
    S = Results([dict(r, examples_ratio=1.0) if r['chapter'] in ('zapping', 'aft', 'piggyback') else r for r in S], S.meta)
    fig = C.figure(S)
    ax, = fig.axes
    fig.canvas.draw()
    filled = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() in
              [t.get_text() for t in ax.get_legend().get_texts()] and len(c.get_offsets())]
    xy = ax.transData.transform(np.concatenate([c.get_offsets() for c in filled]))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert d[~np.eye(len(xy), dtype=bool)].min() > 5, 'two methods drawn on one spot'
    assert all(c.get_alpha() < 0.6 for c in filled)             # see-through: an error bar behind a disc shows
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and not any('10^' in t or '{' in t for t in ticks), ticks
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == len(set(labels)) and not ax.texts       # names in the legend, once; none on the data
    assert any('side by side' in t.get_text() for t in fig.texts)


def test_a_method_whose_reference_is_at_chance_is_not_drawn_and_the_chart_says_so():
    res = fake()
    z = res['zapping']
    res['zapping'] = Results([dict(r, acc=0.02 + 0.001 * r['seed']) if r['method'] == 'iid/seq_head' and r['zap_every'] == 0
                              else r for r in z], z.meta)           # 50 classes: chance 0.02
    S = C.summarize(res)
    zrow = next(r for r in S if r['chapter'] == 'zapping')
    assert zrow['chance'] == pytest.approx(0.02) and not C.above_chance(zrow)
    assert all(C.above_chance(r) for r in S if r['chapter'] != 'zapping')
    fig = C.figure(S)
    ax, = fig.axes
    names = ' '.join(t.get_text() for t in ax.get_legend().get_texts())
    assert C.NAMES['zapping'] not in names and C.NAMES['kvb'] in names
    assert any('reference is at chance' in t.get_text() and C.NAMES['zapping'] in t.get_text() for t in fig.texts)
    assert C.above_chance(dict(zrow, chance=None))             # no classes: nothing to be at chance against


def test_curves_share_one_scale_and_filter_the_label_budget():
    res = fake()
    fig = C.curves(res)
    axs = fig.axes
    assert len(axs) == 5 and all(a.get_ylim() == (0, 1.02) and a.get_xscale() == 'log' for a in axs)
    assert len({a.get_xlim() for a in axs}) == 1
    aft = axs[list(res).index('aft')]
    ref = [ln for ln in aft.get_lines() if ln.get_label().startswith('reference')][0]
    assert ref.get_label() == 'reference: 75.0%'                  # the final accuracy, readable on a 0-1 axis
    assert ref.get_ydata()[-1] == pytest.approx(.75)             # the 500-label STL, not the mean of 100 and 500
    assert ref.get_xdata()[-1] == pytest.approx(1.0)             # x is a fraction of the reference's examples


def test_verdicts_render_the_numbers_and_flip_their_words():
    res = fake()
    S = C.summarize(res)
    text = C.verdicts(res, S)
    assert len(text) == 5 and all('{' not in t for t in text)
    k = {r['chapter']: r for r in S}['kprior']
    assert f"{k['acc']:.1%} against {k['retrain_acc']:.1%}" in text[0] and f"{k['examples_ratio']:.2g}× its examples" in text[0]
    assert '-0.4 ± 0.1 pt, below it' in text[0] and '+1.0 ± 0.0 pt, above it' in text[1]
    assert "(fewer examples than the reference)" in text[0] and '(as many examples as the reference)' in text[2]
    assert 'Batch started from zero' not in text[0]            # the reference is Batch from scratch: said once
    assert 'above Replay on the same points' in text[0] and 'processes 1.9× the examples' in text[0] and '(more)' in text[0]
    flipped = C.verdicts(f := fake(k2=0.70, rp2=0.78, lin=0.95, ft=0.90), C.summarize(f))
    assert 'below Replay on the same points' in flipped[0]
    assert 'linear probe gets 95.0% (above KVB)' in flipped[4] and 'linear probe gets 20.0% (below KVB)' in text[4]
    assert '(below Piggyback)' in flipped[2] and '(above Piggyback)' in text[2]
    assert 'first task reads 99.00% at the end, 99.00% when it was learned (its outputs bit-identical)' in text[2]
    assert 'moves the first task from 99.0% to 90.0%' in text[2]
    # the head alone and scratch, paired seed by seed (Piggyback .94 + .001·seed)
    assert ('Against a new head alone on the frozen network (66.0%) Piggyback is +28.1 ± 0.1 pt, above it, paired over '
            '3 seeds.') in text[2]
    assert 'from scratch per task (95.0%) Piggyback is -0.9 ± 0.1 pt, below it, paired over 3 seeds.' in text[2]
    one_head = {'piggyback': Results([r for r in res['piggyback'] if r['method'] != 'classifier' or r['seed'] == 1],
                                     res['piggyback'].meta)}
    t = C.verdicts(one_head, C.summarize(one_head))[0]
    assert 'Piggyback is +28.1 pt, above it on the one seed (spread unknown), paired over 1 seed.' in t
    no_ft = {'piggyback': Results([r for r in res['piggyback'] if r['method'] not in ('finetune', 'scratch')],
                                  res['piggyback'].meta)}
    t = C.verdicts(no_ft, C.summarize(no_ft))[0]
    assert 'Fine-tuning' not in t and 'from scratch' not in t and 'new head alone' in t     # a sentence per method present
    assert 'ship with the package' not in text[2]
    meta = {**res['piggyback'].meta, 'measured': '/some/where/x.json', 'measured_seeds': [0, 1, 2],
            'provenance': {'torch': '2.14.1', 'cpu': 'AVX512', 'threads': 1}}
    shipped = {'piggyback': Results(res['piggyback'].rows, meta)}
    t = C.verdicts(shipped, C.summarize(shipped))[0]
    assert ('These rows were measured once by the code that runs now (torch 2.14.1, AVX512 CPU kernels, 1 thread(s)) '
            'and ship with the package as `x.json`.') in t
    part = {'piggyback': Results(res['piggyback'].rows, {**meta, 'measured_seeds': [0]})}     # merged with computed seeds
    t = C.verdicts(part, C.summarize(part))[0]
    assert 'The rows of seed 0 were measured once' in t and 'seeds 1, 2 were computed here.' in t
    # the other method's accuracy is its mean over the seeds paired with Piggyback's
    uneven = {'piggyback': Results([dict(r, acc=.5) if r['method'] == 'classifier' and r['seed'] == 2 else r
                                    for r in res['piggyback'] if not (r['method'] == 'piggyback' and r['seed'] == 2)],
                                   res['piggyback'].meta)}
    t = C.verdicts(uneven, C.summarize({'piggyback': res['piggyback']}))[0]
    assert 'new head alone on the frozen network (66.0%) Piggyback is +28.0 ± 0.1 pt' in t
    md = C.summary_markdown(S, res)
    assert '## Which method when' in md and "{'" not in md and 'memory = 0.1' in md
    # only chapters present are described
    one = {'kvb': res['kvb']}
    assert len(C.verdicts(one, C.summarize(one))) == 1


def test_compare_notebook_markdown_types_no_results():
    # the comparison's prose is printed by code; its markdown holds no accuracy, gap or ratio typed by hand
    from conftest import typed_result
    hit = typed_result('90_compare')
    assert hit is None, f"a number typed into the markdown: {hit}"


def test_bad_input_is_refused_by_name():
    import math as m
    res = fake()
    def edit(name, method, **kw):
        rows = [dict(r, **kw) if r['method'] == method else r for r in res[name]]
        return {name: Results(rows, res[name].meta)}
    with pytest.raises(ValueError, match=r"'aft' row has acc=nan"): C.summarize(edit('aft', 'aft', acc=m.nan))
    with pytest.raises(ValueError, match=r"examples=0"): C.summarize(edit('kvb', 'retrain', examples=0))
    with pytest.raises(ValueError, match=r"lacks \['state_bytes'\]"):
        C.summarize({'kvb': Results([{k: v for k, v in r.items() if k != 'state_bytes'} for r in res['kvb']], res['kvb'].meta)})
    with pytest.raises(ValueError, match='no rows'): C.summarize({'kprior': Results([])})
    with pytest.raises(ValueError, match='merged twice'):
        C.summarize({'kvb': Results(res['kvb'].rows * 2, res['kvb'].meta)})
    with pytest.raises(TypeError, match='must be a dict'): C.summarize(res['kprior'])
    with pytest.raises(ValueError, match='is empty'): C.summarize({})
    with pytest.raises(ValueError, match='is empty'): C.curves({})
    with pytest.raises(TypeError, match='summarize'): C.table(res)
    S = C.summarize(res)
    with pytest.raises(ValueError, match="no such chapter"): C.verdicts({'kprior': res['kprior']}, S)
    with pytest.raises(TypeError, match='first argument'): C.summary_markdown(res, S)


def test_one_seed_says_its_spread_is_unknown():
    res = fake(seeds=(0,))
    S = C.summarize(res)
    assert '± n/a' in C.table(S) and '| 1 |' in C.table(S)
    assert 'below it on the one seed (spread unknown)' in C.verdicts(res, S)[0]


def test_a_missing_headline_setting_is_said_not_hidden():
    res = fake()
    rows = [r for r in res['kprior'] if not (r['method'] == 'kprior' and r.get('memory') == .1)]
    with pytest.warns(UserWarning, match=r"no 'kprior' rows at memory = 0.1; the summary uses memory = "):
        s = C.summarize({'kprior': Results(rows, res['kprior'].meta)})[0]
    assert s['at'] != {'memory': 0.1} and f"memory = {s['at']['memory']:g}" in C.table(Results([s]))


def test_an_unknown_chapter_is_named_not_a_key_error():
    import pytest
    from adaptbook import compare
    from adaptbook.core import Results
    with pytest.raises(ValueError, match="chapter 'nope' is not known; known: kprior"):
        compare.load_all(names=['nope'])
    with pytest.raises(ValueError, match="names chapter 'nope', which has no headline"):
        compare.summarize({'nope': Results([{'method': 'x', 'acc': 1.0}])})
