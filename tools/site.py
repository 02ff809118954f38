"""Build the tutorial site offline: nbdev's processed notebooks (`_proc/`, what Quarto would render) -> HTML with
nbconvert, into `_site/` (gitignored). The production renderer stays Quarto (`nbdev-docs`, same `nbs/sidebar.yml`);
this one runs where Quarto cannot be installed, so the site can be built and checked in a browser here and in CI.

    python tools/site.py [--out _site] [--no-proc] [--workers 2]

- `_proc/`: `nbdev.quarto.proc_nbs` (the `nbdev-proc-nbs` command; `nbdev-docs` runs the same step before Quarto):
  it runs the `show_doc` cells and applies nbdev's processors (frontmatter, hidden cells, doc links).
- pages: one per entry of `nbs/sidebar.yml`, in its order, landing page (index) first; executed outputs and figures
  as stored in the notebooks (nothing is re-executed); Quarto cell options honoured where they change what is shown
  (`#| echo: false`, `#| output: false`, `#| include: false`); `#|` lines stripped from the shown code.
- maths: MathJax 2.7 already on the machine (no network), copied to `_site/mathjax/`: Debian's libjs-mathjax (SVG
  output, what CI installs), else the pip package jupyter-server-mathjax (see `mathjax_source`).
- widgets: no widget JavaScript (a page has no kernel); `explore`'s outputs carry a `text/html` static grid that is
  shown instead of the live controls.
"""
from __future__ import annotations
import argparse, html, json, os, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def sidebar_pages(nbs: Path) -> list[str]:
    "Notebook names in `sidebar.yml` order (index first); sections (`section:`/`contents:`) are flattened."
    import yaml
    contents = yaml.safe_load((nbs / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    out = []
    def walk(items):
        for it in items:
            if isinstance(it, str): out.append(it)
            elif isinstance(it, dict) and 'contents' in it: walk(it['contents'])
            elif isinstance(it, dict) and 'href' in it: out.append(it['href'])
    walk(contents)
    out = [p for p in out if p.endswith('.ipynb')]
    if 'index.ipynb' in out: out.remove('index.ipynb')
    return ['index.ipynb'] + out

def sidebar_sections(nbs: Path) -> dict[str, str]:
    "{first notebook of a `section:` in `sidebar.yml`: the section's title}, for the headings in the sidebar."
    import yaml
    contents = yaml.safe_load((nbs / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    out = {}
    for it in contents:
        if isinstance(it, dict) and it.get('section') and it.get('contents'):
            first = it['contents'][0]
            out[first if isinstance(first, str) else first.get('href', '')] = str(it['section'])
    return out

def proc(nbs: Path, workers: int) -> Path:
    "Run nbdev's docs preprocessing into `_proc/` (incremental: only changed notebooks are processed again)."
    from nbdev.quarto import proc_nbs
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        return Path(proc_nbs(str(nbs), n_workers=workers))
    finally:
        os.chdir(cwd)

_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def _directives(src: str) -> tuple[dict, str]:
    "Quarto/nbdev `#|` options at the top of a cell, and the source without them."
    lines, opts = src.splitlines(), {}
    while lines and _DIRECTIVE.match(lines[0]):
        k, v = _DIRECTIVE.match(lines[0]).groups()
        opts[k] = v.lower() if v else 'true'
        lines.pop(0)
    return opts, '\n'.join(lines)

def _pandoc_attrs(md: str) -> str:
    "Drop pandoc/Quarto attribute blocks `{...}` after links/headings and `:::` fences, which plain markdown shows."
    md = re.sub(r'(\]\([^)]*\))\{[^}\n]*\}', r'\1', md)
    md = re.sub(r'^(#+ .*?)\s*\{[#.][^}\n]*\}\s*$', r'\1', md, flags=re.M)
    return re.sub(r'^:::.*$', '', md, flags=re.M)

def clean_notebook(nb: dict, doc_url: str) -> tuple[dict, str, str]:
    "A `_proc` notebook made valid for nbconvert and closer to what Quarto shows; returns (nb, title, description)."
    title, desc = '', ''
    cells, last_fold = [], None            # last_fold: (index in cells, summary, bodies) of the last folded cell
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'raw' and src.startswith('---'):         # the frontmatter nbdev wrote from `# title\n> ...`
            import yaml
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            title, desc = str(fm.get('title', '')), str(fm.get('description', ''))
            c = {'cell_type': 'markdown', 'metadata': {}, 'source': f'# {title}\n\n' + (f'> {desc}\n' if desc else '')}
            cells.append(c)
            continue
        opts, body = _directives(src)
        if opts.get('include') == 'false': continue
        meta = {}
        if c['cell_type'] == 'code' and '# colab-cells:' in body and 'hide' not in opts and opts.get('echo') != 'false':
            opts.setdefault('code-fold', 'true')                   # set-up cells (Colab install, data): folded
            opts.setdefault('code-summary', 'Set-up: the data this chapter reads')
        if c['cell_type'] == 'code' and opts.get('code-fold') in ('true', 'show') and 'hide' not in opts \
                and opts.get('echo') != 'false':           # Quarto's folded code: a <details> the reader opens
            summary = html.escape(opts.get('code-summary', 'code').strip('"\'')).capitalize()
            fold = lambda code: {'cell_type': 'markdown', 'metadata': {}, 'source': f'<details class="ab-fold"{" open" if opts["code-fold"] == "show" else ""}>'
                                 f'<summary>{summary}</summary>\n\n```python\n{code}\n```\n\n</details>'}
            if last_fold is not None and last_fold[1] == summary and len(cells) == last_fold[0] + 2:
                last_fold[2].append(body)                          # consecutive set-up cells: one fold, not two alike
                cells[last_fold[0]] = fold('\n\n'.join(last_fold[2]))
            else:
                last_fold = (len(cells), summary, [body])
                cells.append(fold(body))
            opts['echo'] = 'false'
        if c['cell_type'] == 'code':
            tags = []
            if opts.get('echo') == 'false' or 'hide' in opts: tags.append('remove_input')
            if opts.get('output') == 'false': tags.append('remove_output')
            meta = {'tags': tags} if tags else {}
            outs = []
            for o in c.get('outputs', []):
                o = {k: v for k, v in o.items() if k != 'transient'}
                if 'metadata' in o: o['metadata'] = {}
                if 'data' in o:
                    o['data'] = {k: v for k, v in o['data'].items() if k != 'application/vnd.jupyter.widget-view+json'}
                    if not o['data']: continue                            # a live widget with no static fallback
                    for k in ('text/markdown', 'text/html'):
                        if k in o['data']:
                            v = ''.join(o['data'][k]) if isinstance(o['data'][k], list) else o['data'][k]
                            o['data'][k] = _local_links(_pandoc_attrs(v), doc_url)
                outs.append(o)
            c = dict(c, metadata=meta, outputs=outs, source=body, execution_count=c.get('execution_count'))
        elif c['cell_type'] == 'markdown':
            c = dict(c, metadata={}, source=_local_links(_pandoc_attrs(body), doc_url))
        else:
            c = dict(c, metadata={})
        c.pop('id', None)
        c.pop('has_sd', None)                                             # nbdev's marker; not in the nbformat schema
        cells.append(c)
    meta = {k: v for k, v in nb['metadata'].items() if k in ('kernelspec', 'language_info')}
    return dict(nb, cells=cells, metadata=meta, nbformat=4, nbformat_minor=4), title, desc

def _local_links(text: str, doc_url: str) -> str:
    "Doc links to the published site and `X.ipynb` links become links between the local pages."
    if doc_url: text = text.replace(doc_url.rstrip('/') + '/', '')
    return re.sub(r'(\(|href=")([\w-]+)\.ipynb', r'\1\2.html', text)

_MATHJAX = re.compile(r'<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->', re.S)
DEBIAN_MATHJAX = Path('/usr/share/javascript/mathjax')       # apt-get install libjs-mathjax (MathJax 2.7.9)

def mathjax_source() -> tuple[Path, str]:
    """(folder, output jax) of an installed MathJax 2.7, no network: `$ADAPTBOOK_MATHJAX`, else Debian's
    libjs-mathjax (SVG output: the glyphs are JavaScript data, no web fonts to fetch), else the pip package
    jupyter-server-mathjax (HTML-CSS output with STIX web fonts; Chromium logs one CORS error per page for MathJax's
    `about:blank` font probe, so the browser test needs Debian's)."""
    env = os.environ.get('ADAPTBOOK_MATHJAX')
    for d in ([Path(env)] if env else []) + [DEBIAN_MATHJAX]:
        if (d / 'MathJax.js').exists() and (d / 'jax/output/SVG/jax.js').exists(): return d, 'SVG'
    try:
        import jupyter_server_mathjax
        return Path(jupyter_server_mathjax.__file__).parent / 'static', 'HTML-CSS'
    except ImportError:
        raise SystemExit('site: no MathJax found: apt-get install libjs-mathjax (or pip install jupyter-server-mathjax)')

def copy_mathjax(src: Path, output: str, dest: Path) -> None:
    "Copy the parts of MathJax the pages use (TeX input, one output jax, its TeX font data) into `dest`."
    if output == 'HTML-CSS':
        shutil.copytree(src, dest)
        return
    parts = ['MathJax.js', 'config/Safe.js', 'config/TeX-AMS_SVG-full.js', 'extensions', 'jax/element',
             'jax/input/TeX', 'jax/output/SVG/jax.js', 'jax/output/SVG/config.js', 'jax/output/SVG/autoload',
             'jax/output/SVG/fonts/TeX']
    for p in parts:
        (dest / p).parent.mkdir(parents=True, exist_ok=True)
        if (src / p).is_dir(): shutil.copytree(src / p, dest / p, symlinks=False)
        else: shutil.copy(src / p, dest / p)

def _mathjax_block(output: str) -> str:
    "MathJax configuration and loader: `$...$`, `$$...$$`; sets body[data-mathjax=done] once typesetting is over."
    config = 'TeX-AMS_SVG-full,Safe' if output == 'SVG' else 'TeX-AMS-MML_HTMLorMML-full,Safe'
    fonts = ('SVG: {font: "TeX", linebreaks: {automatic: true}}' if output == 'SVG' else
             '"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}')
    return ('<script type="text/x-mathjax-config">MathJax.Hub.Config({'
            'tex2jax: {inlineMath: [["$","$"], ["\\\\(","\\\\)"]], displayMath: [["$$","$$"], ["\\\\[","\\\\]"]],'
            ' processEscapes: true, processEnvironments: true},'
            ' TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},'
            f' {fonts}, displayAlign: "center", messageStyle: "none", showMathMenu: false}});'
            'MathJax.Hub.Queue(function () { document.body.setAttribute("data-mathjax", "done"); });</script>\n'
            f'<script src="mathjax/MathJax.js?config={config}"></script>')

COLAB_BADGE_URL = 'https://colab.research.google.com/assets/colab-badge.svg'
# a local stand-in for Colab's badge image (the link itself still goes to Colab): the site loads nothing from outside
COLAB_BADGE = ('<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open In Colab">'
               '<rect width="117" height="20" rx="3" fill="#555"/><rect x="38" width="79" height="20" rx="3" fill="#f9ab00"/>'
               '<text x="19" y="14" fill="#fff" font-family="Verdana,sans-serif" font-size="11" text-anchor="middle">Open</text>'
               '<text x="77" y="14" fill="#fff" font-family="Verdana,sans-serif" font-size="11" text-anchor="middle">'
               'In Colab</text></svg>')

_EXTERNAL = re.compile(r'<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>')   # nbconvert's require.js from a CDN

SIDEBAR_CSS = """
body { margin: 0; }
nav.ab-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 230px; overflow-y: auto; padding: 16px 12px;
  background: #f7f7f9; border-right: 1px solid #ddd; font: 14px/1.5 system-ui, sans-serif; box-sizing: border-box; }
nav.ab-sidebar .ab-brand { font-weight: 600; font-size: 17px; margin-bottom: 10px; display: block; color: #222;
  text-decoration: none; }
nav.ab-sidebar a.ab-page { display: block; padding: 3px 8px; border-radius: 4px; color: #2a5db0; text-decoration: none; }
nav.ab-sidebar a.ab-page.active { background: #2a76dd; color: #fff; }
nav.ab-sidebar .ab-section { margin: 14px 8px 4px; font-size: 12px; font-weight: 600; color: #666; text-transform: uppercase; }
details.ab-fold > summary { cursor: pointer; color: #2a5db0; }
main.ab-main { margin-left: 230px; max-width: 1100px; }
main.ab-main .jp-Notebook { padding: 16px 24px; }
nav.ab-pager { display: flex; justify-content: space-between; padding: 16px 24px 32px; border-top: 1px solid #ddd; }
nav.ab-pager a { text-decoration: none; }
"""

def _sidebar(pages: list[tuple[str, str]], current: str, title: str, sections: dict | None = None) -> str:
    "The sidebar: one link per page, a heading before the first page of each section (`sections`: {page: title})."
    sections = sections or {}
    links = ''.join((f'<div class="ab-section">{html.escape(sections[f])}</div>' if f in sections else '')
                    + f'<a class="ab-page{" active" if f == current else ""}" href="{f}">{html.escape(t)}</a>'
                    for f, t in pages)
    return f'<nav class="ab-sidebar"><a class="ab-brand" href="index.html">{html.escape(title)}</a>{links}</nav>'

def _pager(pages: list[tuple[str, str]], current: str) -> str:
    "Previous and next links at the foot of a page, in the sidebar's order."
    i = [f for f, _ in pages].index(current)
    prev = f'<a class="ab-prev" href="{pages[i - 1][0]}">← {html.escape(pages[i - 1][1])}</a>' if i > 0 else '<span></span>'
    nxt = f'<a class="ab-next" href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} →</a>' if i + 1 < len(pages) else '<span></span>'
    return f'<nav class="ab-pager">{prev}{nxt}</nav>\n'

def render(nb: dict, page_title: str) -> str:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    import nbformat
    node = nbformat.reads(json.dumps(nb), as_version=4)        # as from a file: multi-line lists joined into text
    nbformat.validate(node)
    exp = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'},
                                                    remove_all_outputs_tags={'remove_output'}), enabled=True)
    body, _ = exp.from_notebook_node(node, resources={'metadata': {'name': page_title}})
    return body

def build(out: Path, *, run_proc: bool = True, workers: int = 2, verbose: bool = True) -> dict:
    "Build the site into `out`; returns {'pages': [...], 'seconds': {...}}."
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from nbdev.config import get_config
    cfg = get_config(str(ROOT))
    nbs, doc_url, title = Path(cfg.nbs_path), cfg.get('doc_host', '') + cfg.get('doc_baseurl', ''), cfg.get('title', 'adaptbook')
    mj_src, mj_output = mathjax_source()
    procdir = proc(nbs, workers) if run_proc else ROOT / '_proc'
    t_proc = time.perf_counter() - t0
    names = sidebar_pages(nbs)
    missing = [n for n in names if not (procdir / n).exists()]
    if missing: raise SystemExit(f'site: {missing} are in nbs/sidebar.yml but not in {procdir} (did nbdev proc fail?)')
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    cleaned = {}
    for n in names:
        nb, t, _ = clean_notebook(json.loads((procdir / n).read_text()), doc_url)
        cleaned[n] = (nb, t or Path(n).stem)
    pages = [(Path(n).stem + '.html', 'Home' if n == 'index.ipynb' else t) for n, (_, t) in cleaned.items()]
    sections = {Path(n).stem + '.html': t for n, t in sidebar_sections(nbs).items()}
    for n, (nb, t) in cleaned.items():
        f = Path(n).stem + '.html'
        page = render(nb, f'{t} – {title}' if n != 'index.ipynb' else title)
        page = _MATHJAX.sub(lambda m: _mathjax_block(mj_output), page, count=1)
        page = _EXTERNAL.sub('', page).replace(COLAB_BADGE_URL, 'colab-badge.svg')   # no request leaves the site
        page = page.replace('</head>', f'<link rel="icon" href="data:,">\n<style>{SIDEBAR_CSS}</style>\n<link rel="stylesheet" href="styles.css">\n</head>', 1)
        page = re.sub(r'<body([^>]*)>', lambda m: f'<body{m.group(1)}>\n{_sidebar(pages, f, title, sections)}\n<main class="ab-main">',
                      page, count=1)
        page = page.replace('</body>', f'{_pager(pages, f)}</main>\n</body>', 1)
        (out / f).write_text(page)
        if verbose: print(f'  {f:<22} {len(page) / 1e6:5.1f} MB  {t}')
    copy_mathjax(mj_src, mj_output, out / 'mathjax')
    (out / 'colab-badge.svg').write_text(COLAB_BADGE)
    if (nbs / 'styles.css').exists(): shutil.copy(nbs / 'styles.css', out / 'styles.css')
    secs = dict(proc=round(t_proc, 1), total=round(time.perf_counter() - t0, 1))
    (out / 'site.json').write_text(json.dumps(dict(pages=[p for p, _ in pages], seconds=secs,
                                                   mathjax=f'{mj_src} ({mj_output})')))
    return dict(pages=[p for p, _ in pages], seconds=secs)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT / '_site'), help='output folder (default: _site)')
    ap.add_argument('--no-proc', action='store_true', help='reuse _proc/ as it is (do not run nbdev proc)')
    ap.add_argument('--workers', type=int, default=2, help='processes for nbdev proc (default: 2)')
    a = ap.parse_args(argv)
    r = build(Path(a.out), run_proc=not a.no_proc, workers=a.workers)
    print(f"site: {len(r['pages'])} pages in {a.out}; nbdev proc {r['seconds']['proc']} s, total {r['seconds']['total']} s")
    return 0

if __name__ == '__main__':
    sys.exit(main())
