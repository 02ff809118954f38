"""Inference time of a Piggyback model with live masks (W ⊙ b(m) recomputed on every forward pass) and of the merged
model (mask baked into plain weights), relative to the plain network. Prints ratios; asserts nothing about time.

usage: python bench/piggyback_infer.py [--models zoo mlp cnn resnet18] [--batch 256] [--reps 20] [--device cpu]"""
import argparse, statistics, time

import torch

from adaptbook import piggyback as pg
from adaptbook.core import get_device, seed_everything


def timeit(models, x, reps, dev):
    "Median seconds of one forward pass of each of `models` on `x`, interleaved (so load drifts hit all alike)."
    ts = [[] for _ in models]
    with torch.no_grad():
        for i in range(reps + 2):                    # two warm-up rounds
            for m, t_ in zip(models, ts):
                if dev.type == 'cuda': torch.cuda.synchronize(dev)
                t = time.perf_counter()
                m(x)
                if dev.type == 'cuda': torch.cuda.synchronize(dev)
                if i >= 2: t_.append(time.perf_counter() - t)
    return [statistics.median(t_) for t_ in ts]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=['zoo', 'mlp', 'cnn', 'resnet18'])
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--reps', type=int, default=20)
    p.add_argument('--device', default=None)
    a = p.parse_args(argv)
    dev = get_device(a.device)
    print(f'device {dev}, batch {a.batch}, median of {a.reps} forward passes on 28×28 inputs')
    print(f"{'model':10s} {'plain ms':>9s} {'live/plain':>11s} {'merged/plain':>13s}")
    for name in a.models:
        seed_everything(0)
        # 'zoo': the chapter's frozen backbone (shipped weights); the others: the book's networks, randomly initialised
        net = pg.starting_point() if name == 'zoo' else pg.build_model(name, (28, 28), 10, weights=None)
        net = net.to(dev).eval()
        pb = pg.Piggyback(net).to(dev)
        pb.add_task('t', 10)
        with torch.no_grad():      # switch off ~30 % of the weights, as a trained mask would
            for p_ in pb.parametrizations().values():
                s = p_.scores['t']
                s.copy_(torch.where(torch.rand_like(s) < 0.3, torch.zeros_like(s), s))
        live = pb.eval()
        merged = pg.merge(pb, 't').to(dev)
        x = torch.rand(a.batch, 28, 28, device=dev)
        with torch.no_grad(): assert torch.equal(merged(x), live(x))
        t0, t1, t2 = timeit([net, live, merged], x, a.reps, dev)
        print(f'{name:10s} {1e3 * t0:9.2f} {t1 / t0:11.2f} {t2 / t0:13.2f}')


if __name__ == '__main__':
    main()
