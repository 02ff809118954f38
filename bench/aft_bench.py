"""Benchmark of the AFT chapter: the cost of adapting (AFT from stored teacher features) vs retraining (STL: the
pre-trained student fine-tuned on its labels alone), as ratios, from the rows `experiment` returns (the candidates
chosen on validation); the cost of the search over β and learning rates; the one-off setup costs (the zoo models'
pre-training, the teacher's feature pass and the bytes of the stored features); the inference cost of the deployed
student vs the teacher; and the widget's redraw times. Prints; asserts nothing about time.
usage: python bench/aft_bench.py [--mode quick|full] [--seed 0] [--n-labels 500] [--no-widget]"""
import argparse
import time

from adaptbook.aft import TEACHER, experiment, widget

ap = argparse.ArgumentParser()
ap.add_argument('--mode', default='quick')
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--n-labels', type=int, default=500)
ap.add_argument('--no-widget', action='store_true')
a = ap.parse_args()
res = experiment('mnist', mode=a.mode, seed=a.seed, n_labels=a.n_labels)
r = {x['method']: x for x in res if x.get('chosen') or x['role'] == 'setup'}
stl, aft, kd, lkd, probe, tf = r['stl'], r['aft'], r['kd'], r['logit_kd'], r['probe'], r['teacher_features']
for m in ('student_pretraining', 'teacher_pretraining'):
    if m in r:
        print(f"setup (one-off, zoo): {m} {r[m]['examples']:,} examples, {r[m]['seconds']:.1f} s (held-out acc {r[m]['acc']:.3f})")
print(f"setup (one-off): teacher feature pass {tf['examples']} examples, {tf['seconds']:.3f} s, "
      f"stored features {tf['state_bytes'] / 1024:.0f} KiB (teacher {TEACHER})")
for m in (stl, aft, kd, lkd, probe):
    print(f"{m['method']:<9} chosen beta {m['beta']} lr {m['lr']}: val {m['val_acc']:.3f} test {m['acc']:.3f}  "
          f"{m['examples']} examples  {m['steps']} steps  {m['seconds']:.2f} s  search {m['select_examples']} examples  "
          f"kept besides the network {m['state_bytes'] / 1024:.0f} KiB")
print(f"ratios AFT/STL (adapt/retrain): examples {aft['examples'] / stl['examples']:.3f}, "
      f"seconds {aft['seconds'] / stl['seconds']:.3f}, search examples {aft['select_examples'] / stl['select_examples']:.3f}, "
      f"accuracy {aft['acc'] / stl['acc']:.3f}")
print(f"ratios KD/STL: seconds {kd['seconds'] / stl['seconds']:.3f}, accuracy {kd['acc'] / stl['acc']:.3f}; "
      f"logit KD/STL: seconds {lkd['seconds'] / stl['seconds']:.3f}, accuracy {lkd['acc'] / stl['acc']:.3f}")
print(f"inference per example: student {aft['student_params']:,} parameters, {aft['student_macs']:,} multiply-adds; "
      f"teacher {aft['teacher_params']:,} parameters, {aft['teacher_macs']:,} multiply-adds "
      f"(teacher/student {aft['teacher_macs'] / aft['student_macs']:.1f}x; the probe needs the teacher)")
if not a.no_widget:
    t = time.perf_counter()
    w = widget()
    print(f'widget, first draw (STL + AFT): {time.perf_counter() - t:.2f} s')
    for beta in (30, 1, 10, 30):
        w.set(beta=beta)
        print(f'widget, beta={beta}: redraw {w.seconds:.2f} s ({len(w.cache)} settings cached)')
    w.set(n_labels=100)
    print(f'widget, n_labels=100 (STL rerun too): redraw {w.seconds:.2f} s')
    w.set(teacher='noise')
    print(f"widget, teacher='noise' (STL rerun too): redraw {w.seconds:.2f} s")
