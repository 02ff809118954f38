"""KVB's capacity against what the frozen features allow: streamed KVB, KVB trained on all classes at once (`kvb_iid`)
and a converged linear probe on the same features (`linear_iid`), for several codebooks × keys per codebook.

Träuble et al. (ICML 2023) use 256 codebooks of 4,096 keys; the chapter's quick mode uses 64 × 256, 1/64 of the key
slots. If KVB trained on all classes at once stays far below the linear probe, the bottleneck's capacity, not
forgetting, sets the number; this prints how far each size gets, and its seconds (one CPU thread unless
OMP_NUM_THREADS says otherwise). Printed, never asserted.

usage: python bench/kvb_capacity.py [--data mnist] [--seed 0] [--sizes 64x256 64x1024 128x1024 128x4096]
       [--epochs 20] [--mode quick]"""
import argparse, time

from adaptbook import kvb


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='mnist')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--sizes', nargs='+', default=['64x256', '64x1024', '128x1024', '128x4096'],
                   help='codebooks x keys per codebook')
    p.add_argument('--epochs', type=int, default=20, help='epochs per task')
    p.add_argument('--mode', default='quick', choices=('quick', 'full'))
    a = p.parse_args()
    sizes = []
    for s in a.sizes:
        try: C, J = (int(v) for v in s.lower().split('x'))
        except ValueError: p.error(f"--sizes {s!r}: write codebooks x keys, e.g. 128x4096")
        sizes.append((C, J))
    print(f"{a.data}, {a.mode} mode, seed {a.seed}, {a.epochs} epochs per task")
    print(f"{'codebooks':>9s} {'keys':>6s} {'streamed':>9s} {'all at once':>11s} {'linear probe':>12s} {'gap pt':>7s} "
          f"{'seconds':>8s}")
    for C, J in sizes:
        t = time.perf_counter()
        r = kvb.experiment(a.data, keys=(J,), codebooks=C, methods=('kvb', 'kvb_iid', 'linear_iid'), seed=a.seed,
                           mode=a.mode, epochs_per_task=a.epochs)
        acc = {x['method']: x['acc'] for x in r if x['role'] != 'setup'}
        print(f"{C:9d} {J:6d} {acc['kvb']:9.4f} {acc['kvb_iid']:11.4f} {acc['linear_iid']:12.4f} "
              f"{100 * (acc['linear_iid'] - acc['kvb']):7.1f} {time.perf_counter() - t:8.0f}", flush=True)


if __name__ == '__main__':
    main()
