"""Benchmark of the AFT chapter: the cost of adapting (AFT from stored teacher features) vs retraining (STL: the
small model on its labels alone), as ratios, from the rows `experiment` returns; the one-off setup costs (teacher
training, feature pass and the bytes of the stored features); the inference cost of the deployed student vs the
teacher; and the widget's redraw times. Prints; asserts nothing about time.
usage: python bench/aft_bench.py [--mode quick|full] [--seed 0] [--n-labels 500] [--no-widget]"""
import argparse
import time

from adaptbook.aft import experiment, widget

ap = argparse.ArgumentParser()
ap.add_argument('--mode', default='quick')
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--n-labels', type=int, default=500)
ap.add_argument('--no-widget', action='store_true')
a = ap.parse_args()
kw = {} if a.mode == 'quick' else dict(teacher_pool=20000, teacher_epochs=30)
res = experiment('mnist', beta=(10,), mode=a.mode, seed=a.seed, n_labels=a.n_labels, **kw)
r = {x['method']: x for x in res}
stl, aft, kd, probe, tf = r['stl'], r['aft'], r['kd'], r['probe'], r['teacher_features']
if 'teacher' in r:
    print(f"setup (one-off): teacher training {r['teacher']['examples']} examples, {r['teacher']['seconds']:.2f} s "
          f"(teacher acc {r['teacher']['acc']:.3f})")
print(f"setup (one-off): teacher feature pass {tf['examples']} examples, {tf['seconds']:.3f} s, "
      f"stored features {tf['state_bytes'] / 1024:.0f} KiB")
for m in (stl, aft, kd, probe):
    print(f"{m['method']:<6} acc {m['acc']:.3f}  {m['examples']} examples  {m['steps']} steps  {m['seconds']:.2f} s  "
          f"kept besides the network {m['state_bytes'] / 1024:.0f} KiB")
print(f"ratios AFT/STL (adapt/retrain): examples {aft['examples'] / stl['examples']:.3f}, "
      f"seconds {aft['seconds'] / stl['seconds']:.3f}, accuracy {aft['acc'] / stl['acc']:.3f}")
print(f"ratios KD/STL: seconds {kd['seconds'] / stl['seconds']:.3f}, accuracy {kd['acc'] / stl['acc']:.3f}")
print(f"inference per example: student {stl['student_params']:,} parameters, {stl['student_macs']:,} multiply-adds; "
      f"teacher {stl['teacher_params']:,} parameters, {stl['teacher_macs']:,} multiply-adds "
      f"(teacher/student {stl['teacher_macs'] / stl['student_macs']:.1f}x; the probe needs the teacher)")
if not a.no_widget:
    t = time.perf_counter()
    w = widget()
    print(f'widget, first draw (teacher + STL + AFT): {time.perf_counter() - t:.2f} s')
    for beta in (30, 1, 10, 30):
        w.set(beta=beta)
        print(f'widget, beta={beta}: redraw {w.seconds:.2f} s ({len(w.cache)} settings cached)')
    w.set(n_labels=100)
    print(f'widget, n_labels=100 (STL rerun too): redraw {w.seconds:.2f} s')
    w.set(noise_dims=512)
    print(f'widget, noise_dims=512 (STL rerun too): redraw {w.seconds:.2f} s')
