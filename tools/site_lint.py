"""List the notebook cells that break nbdev's docs step (`nbdev-docs`, `nbdev-proc-nbs`, `tools/site.py`).

nbdev's `exec_show_docs` processor runs, in a fresh namespace, every exported cell, every `show_doc` cell and EVERY
CELL THAT CONTAINS AN IMPORT (anywhere in it, even inside a function), nothing else. A cell that imports something
and also uses a name made by a plain (not exported) cell therefore fails there with a NameError, although the
notebook runs fine top to bottom. The fix is nbdev's own advice: put the imports of such a cell in a cell of their own
(the rest then is not run by the docs step), or make the cell `#| exec_doc`-safe.

    python tools/site_lint.py [nbs/X.ipynb ...]      # default: every notebook in nbs/; exit 1 if any is found
"""
from __future__ import annotations
import ast, builtins, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_EXPORT = re.compile(r'^\s*#\|\s*(export|exports|exporti|exec_doc)\b', re.M)
_NOEVAL = re.compile(r'^\s*#\|\s*eval\s*:\s*false', re.M | re.I)

def _parse(src: str):
    code = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())
    try: return ast.parse(code)
    except SyntaxError: return None

_KNOWN = set(dir(builtins)) | {'get_ipython', 'display', '__name__', '__file__', 'show_doc'}

def _outside_names(tree) -> set:
    "Names the cell reads but does not define itself (imports, assignments, defs, arguments)."
    made, used = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name): (made if isinstance(n.ctx, (ast.Store, ast.Del)) else used).add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            made |= {(a.asname or a.name).split('.')[0] for a in n.names}
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): made.add(n.name)
        elif isinstance(n, ast.arg): made.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name: made.add(n.name)
    return used - made - _KNOWN

def _made(tree) -> set:
    "Module-level names a cell defines (not the locals of its functions)."
    made = set()
    def visit(n):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            made.add(n.name)
            return                                           # its body is another scope
        if isinstance(n, ast.Lambda): return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): made.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            made.update((a.asname or a.name).split('.')[0] for a in n.names if a.name != '*')   # star: show_doc & co
        for ch in ast.iter_child_nodes(n): visit(ch)
    visit(tree)
    return made

def risky_cells(nb_path: Path) -> list[tuple[int, str]]:
    """(cell index, first code line) of the cells nbdev's docs step runs (they contain an import) that read a name
    only a cell it does NOT run defines: those fail there with a NameError (or worse, run half an experiment)."""
    out, avail = [], set()
    for i, c in enumerate(json.loads(nb_path.read_text())['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        tree = _parse(src)
        if tree is None or _NOEVAL.search(src): continue
        has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        if not (_EXPORT.search(src) or has_import or 'show_doc(' in src): continue      # the docs step skips it
        missing = _outside_names(tree) - avail
        avail |= _made(tree)
        if missing and not _EXPORT.search(src) and 'show_doc(' not in src:
            first = next((l for l in src.splitlines() if l.strip() and not l.lstrip().startswith('#')), '')
            out.append((i, f"{first.strip()[:70]}  (needs {', '.join(sorted(missing)[:4])})"))
    return out

def main(argv=None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    n = 0
    for p in paths:
        for i, line in risky_cells(p):
            n += 1
            print(f'{p.name}: cell {i}: the docs step runs it (it imports) without what it needs: {line}')
    print(f'{n} cell(s) to split (imports in a cell of their own)' if n else 'no cell mixes imports with other code')
    return 1 if n else 0

if __name__ == '__main__':
    sys.exit(main())
