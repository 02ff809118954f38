"""Every figure `adaptbook run all` saves, checked by `core.figure_problems` (issue #34): labels inside their axes and
not on each other, legends off the data and naming each method once, no sweep panel at a single x value, tick labels
readable. Each chapter's figure is drawn from its `run()` (cached on disk by the notebooks' run, so this costs seconds
after `nbdev-test`), as `adaptbook run` draws it, then the comparison's two figures. Marked `figures`: the README's
test command runs it with the regression guard, after the notebooks."""
import matplotlib
import pytest

matplotlib.use('Agg')
from adaptbook import cli, compare, core  # noqa: E402

NAMES = [n for n in cli.CHAPTERS if n in cli.load_chapters()]


@pytest.fixture(scope='module')
def results():
    return compare.load_all(mode='quick', names=NAMES)


@pytest.mark.figures
@pytest.mark.parametrize('name', NAMES)
def test_chapter_figure(results, name):
    import matplotlib.pyplot as plt
    fig = core.draw(name, results[name])
    try: problems = core.figure_problems(fig)
    finally: plt.close(fig)
    assert not problems, f'{name}.png:\n' + '\n'.join(problems)


@pytest.mark.figures
@pytest.mark.parametrize('which', ['compare', 'curves'])
def test_comparison_figures(results, which):
    import matplotlib.pyplot as plt
    heads = {n: r for n, r in results.items() if n in compare.HEADLINES}
    fig = compare.figure(compare.summarize(heads)) if which == 'compare' else compare.curves(heads)
    try: problems = core.figure_problems(fig)
    finally: plt.close(fig)
    assert not problems, f'{which}.png:\n' + '\n'.join(problems)
