"""Redraw time of every chapter's `widget()` at its own (small) default size: the first draw, a new setting of the
main slider (a rerun), and a setting seen before (from the cache). Targets on 2 CPU cores: new ≤ 5 s, cached ≤ 0.5 s.
Prints seconds, never asserts them. Usage: python bench/widgets_bench.py [chapter ...]"""
import os, sys, time
os.environ.setdefault('MPLBACKEND', 'Agg')
import importlib
import torch
from adaptbook import cli, widgets

widgets.display = lambda *a, **k: None        # no notebook here: nothing to display the controls in

def bench(name: str) -> dict:
    mod = importlib.import_module(f'adaptbook.{name}')
    t = time.perf_counter()
    w = mod.widget()
    first = time.perf_counter() - t
    knob, control = next(iter(w.controls.items()))
    values = list(getattr(control, '_options_values', None) or [control.max])   # a selection's values (not labels)
    start = control.value
    new = next(v for v in reversed(values) if v != start)
    t = time.perf_counter()
    w.set(**{knob: new})
    rerun = time.perf_counter() - t
    t = time.perf_counter()
    w.set(**{knob: start})
    cached = time.perf_counter() - t
    return dict(chapter=name, knob=knob, first=first, new=rerun, cached=cached)

if __name__ == '__main__':
    names = sys.argv[1:] or [m for m in cli.CHAPTERS if m != 'intro' and os.path.exists(
        os.path.join(os.path.dirname(cli.__file__), f'{m}.py'))]
    print(f'torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}')
    print(f"{'chapter':10s} {'knob':12s} {'first draw':>10s} {'new setting':>12s} {'cached':>8s}   targets: new ≤ 5 s, cached ≤ 0.5 s")
    for n in names:
        r = bench(n)
        print(f"{r['chapter']:10s} {r['knob']:12s} {r['first']:9.2f}s {r['new']:11.2f}s {r['cached']:7.2f}s")
