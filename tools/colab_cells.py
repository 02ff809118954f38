"""Give each chapter notebook its Colab cells, idempotently (run it again: the cells are replaced, never doubled).

    python tools/colab_cells.py [nbs/X.ipynb ...]     # default: the chapters in CHAPTERS below

Inserted right after the title cell (the `# Title` + `> description` markdown that nbdev turns into the page header):
1. an "Open in Colab" badge (markdown, the nbdev/fastai way), linking to
   https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/nbs/<notebook>.ipynb, built from
   `[project.urls] Repository` in pyproject.toml and nbdev's `branch` (default main);
2. an install cell that runs only on Colab (`google.colab` in `sys.modules`): `pip install` adaptbook from the
   repository; it mounts no Drive; anywhere else (JupyterLab, nbdev-test, CI) it does nothing. Hidden on the site;
3. data cells: `from adaptbook.data import ensure`, then `ensure(<the chapter's datasets>)` (offline places first, then a checked download;
   with neither it stops with one line saying what to do), or, for a chapter with only embedded data, a sentence.

Each inserted cell carries a marker comment (`colab-cells:`), which is how a second run finds and replaces them; the
marker survives `nbdev-clean` (which strips cell metadata, so metadata could not be used).
"""
from __future__ import annotations
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# notebook -> the datasets its quick mode reads (embedded ones need no cell line)
# (every one is in the data pack, whole; the KVB chapter's Fashion-MNIST keys read only the packed test split)
CHAPTERS = {'index': (), '10_kprior': ('a7a', 'usps'), '20_zapping': ('omniglot',),
            '30_piggyback': ('mnist', 'omniglot'), '40_aft': ('mnist',), '50_kvb': ('mnist', 'omniglot'),
            '90_compare': ('a7a', 'omniglot', 'mnist')}
MARK = 'colab-cells:'
BADGE_SVG = 'https://colab.research.google.com/assets/colab-badge.svg'

def repo_and_branch(root: Path = ROOT) -> tuple[str, str, str]:
    "(owner, repo, branch) from pyproject.toml's [project.urls] Repository and [tool.nbdev] branch."
    try: import tomllib
    except ImportError: import tomli as tomllib          # Python 3.10
    cfg = tomllib.loads((root / 'pyproject.toml').read_text())
    url = cfg['project']['urls']['Repository']
    m = re.match(r'https://github\.com/([^/]+)/([^/#?]+?)(?:\.git)?/?$', url)
    if not m: raise ValueError(f"[project.urls] Repository = {url!r}: expected https://github.com/<owner>/<repo>")
    return m.group(1), m.group(2), cfg.get('tool', {}).get('nbdev', {}).get('branch', 'main')

def colab_cells(nb_name: str, datasets: tuple, owner: str, repo: str, branch: str) -> list[dict]:
    "The three cells for notebook `nb_name` (without .ipynb)."
    url = f'https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/nbs/{nb_name}.ipynb'
    badge = f'<!-- {MARK} badge -->\n[![Open In Colab]({BADGE_SVG})]({url})'
    install = ('#| hide\n'
               f'# {MARK} install. On Colab only: install adaptbook from its repository (no Drive is mounted).\n'
               '# Anywhere else this cell does nothing: install with `pip install -e .` from a clone instead.\n'
               'import sys\n'
               "if 'google.colab' in sys.modules:\n"
               f'    %pip install -q "adaptbook @ git+https://github.com/{owner}/{repo}.git@{branch}"')
    code = lambda s: {'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'source': s}
    if datasets:
        names = ', '.join(repr(d) for d in datasets)
        # the import in a cell of its own: nbdev's docs step runs every cell with an import, and must not download
        data = [code(f'from adaptbook.data import ensure   # {MARK} data\nfrom adaptbook.core import get_device, get_mode'),
                code(f'# {MARK} data. The real data: in the data pack adaptbook ships (checked; nothing to download), else\n'
                     '# found in $ADAPTBOOK_DATA or ~/.cache/adaptbook, else downloaded there. Else it stops here, saying what to do.\n'
                     f'_ = ensure({names})\n'
                     "print(f'mode: {get_mode()} (full with a GPU, quick without; set ADAPTBOOK_MODE to choose); '\n"
                     "      f'device: {get_device()}')")]
    else:
        data = [code(f"# {MARK} data. This page uses scikit-learn's bundled digits only: nothing to download. The chapters'\n"
                     "# real datasets ship with adaptbook (its data pack); each chapter's data cell checks them.\n"
                     "print('data: embedded (scikit-learn digits); nothing to fetch')")]
    return [{'cell_type': 'markdown', 'metadata': {}, 'source': badge}, code(install)] + data

def _src(c) -> str: return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def _title_index(cells: list) -> int:
    "Index of the title cell (first markdown cell starting with '# '), after which the Colab cells go."
    for i, c in enumerate(cells):
        if c['cell_type'] == 'markdown' and _src(c).lstrip().startswith('# '): return i
    raise ValueError("no title cell (a markdown cell starting with '# Title'): nbdev needs one for the page header")

def add_colab_cells(path: Path, datasets: tuple, owner: str, repo: str, branch: str) -> bool:
    "Insert (or replace) the Colab cells of notebook `path`; returns whether the file changed."
    nb = json.loads(path.read_text())
    cells = [c for c in nb['cells'] if MARK not in _src(c)]         # an earlier run's cells go first
    i = _title_index(cells) + 1
    while i < len(cells) and re.match(r'\s*#\|\s*(export\b|default_exp\b)', _src(cells[i])):
        i += 1                                    # after the module docstring / default_exp cells that follow the title
    new = colab_cells(path.stem, datasets, owner, repo, branch)
    if nb['nbformat'] >= 4 and nb.get('nbformat_minor', 0) >= 5:   # cell ids: stable ones, from the marker
        for k, c in enumerate(new): c['id'] = f'colab{k}'
    key = lambda cs: [(c['cell_type'], _src(c)) for c in cs]
    if key(nb['cells']) == key(cells[:i] + new + cells[i:]): return False      # already there, as they would be
    nb['cells'] = cells[:i] + new + cells[i:]
    out = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'
    path.write_text(out)
    return True

def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    owner, repo, branch = repo_and_branch()
    paths = [Path(p) for p in argv] or [ROOT / 'nbs' / f'{n}.ipynb' for n in CHAPTERS]
    for p in paths:
        if p.stem not in CHAPTERS: raise SystemExit(f'{p}: not a chapter this script knows; add it to CHAPTERS')
        changed = add_colab_cells(p, CHAPTERS[p.stem], owner, repo, branch)
        print(f"{p}: {'Colab cells written' if changed else 'unchanged'}")
    print('then: nbdev-clean, and nbdev-test those notebooks')
    return 0

if __name__ == '__main__':
    sys.exit(main())
