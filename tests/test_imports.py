"""No import circle in the library (issue #23): every `import adaptbook.X` / `from adaptbook import X` / `from .X
import` in a module, at the top or inside a function, is an edge; the graph of the modules must have no cycle."""
import ast
import pytest
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'adaptbook'


def edges() -> dict[str, set[str]]:
    mods = {p.stem for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx')}
    out = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((PKG / f'{m}.py').read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith('adaptbook.')}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level == 1: deps |= {base.split('.')[0]} if base else {a.name for a in node.names}
                elif base == 'adaptbook': deps |= {a.name for a in node.names}
                elif base.startswith('adaptbook.'): deps.add(base.split('.')[1])
        out[m] = (deps & mods) - {m}
    return out


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "One cycle of `graph` as a list of nodes, or None."
    state, stack = {}, []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1: return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[n] = 2
        stack.pop()
        return None
    for n in sorted(graph):
        if n not in state and (c := visit(n)): return c
    return None


def test_no_import_circle():
    c = cycle(edges())
    assert c is None, 'import circle: ' + ' -> '.join(c)


def test_cycle_finder_finds_one():
    assert cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert cycle({'a': {'b'}, 'b': set()}) is None


def test_edges_see_function_level_imports():
    g = edges()
    assert 'compare' in g['cli'] and 'core' in g['compare']


@pytest.mark.parametrize('name', ['intro', 'kprior', 'piggyback', 'aft', 'kvb'])
def test_one_role_table_per_chapter(name):
    """Each chapter says which role each of its methods plays in one table, `ROLES` (method -> one of core's ROLES),
    covering every method it can run. (Zapping is the exception by design: the same protocol is 'adapt' on a zapped
    encoder and the 'baseline' reference on a never-zapped one, so its role follows the knob, not the method.)"""
    import importlib
    from adaptbook import core
    m = importlib.import_module(f'adaptbook.{name}')
    assert isinstance(m.ROLES, dict) and set(m.ROLES.values()) <= set(core.ROLES)
    missing = [x for x in m.METHODS if x not in m.ROLES]
    assert not missing, f"{name}.ROLES has no role for {missing}"
