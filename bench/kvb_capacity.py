"""KVB's capacity against what the frozen features allow: streamed KVB, KVB trained on all classes at once (`kvb_iid`)
and a converged linear probe on the same features (`linear_iid`), for several codebooks × keys per codebook and for
keys placed on different unlabelled data.

Träuble et al. (ICML 2023) use 256 codebooks of 4,096 keys; `kvb.experiment` now defaults to 128 × 4,096 (it used
64 × 256, 1/64 of the paper's key slots). If KVB trained on all classes at once stays far below the linear probe, the
bottleneck (its size, or where its keys sit), not forgetting, sets the number; this prints how far each size gets and
its seconds (one CPU thread unless OMP_NUM_THREADS says otherwise). Printed, never asserted; the measured numbers are
the shipped file's (`kvb.capacity_table(kvb.measured_capacity())`, drawn in the KVB chapter), not copied here.
Earlier one-seed probes of other key data at 64 × 1,024 and 20 epochs per task (this script's defaults then): USPS
drawn as MNIST draws its digits (20×20 in a 28×28 frame, passed as `key_data=` a tensor) a little above Omniglot,
USPS stretched to 28×28 and Fashion-MNIST's test split below it; neither the key dimension, ten key epochs nor 100
value epochs moved KVB trained on all classes at once by more than two points.

`--key-data` places the keys on other unlabelled inputs (`kvb.KEY_DATA`; 'stream': the stream's own training inputs,
future tasks included: a leak, for comparison only), to tell what the keys' placement costs from what capacity costs.
`--seeds` runs several seeds (each places its own keys); `--out FILE` writes the rows the chapter reads
(`kvb.measured_capacity`, shipped as adaptbook/measured/kvb_capacity.json: `--seeds 0 1 2 --key-data omniglot` and
`--seeds 0 1 2 --key-data stream` as two processes, about 8 minutes each, then `--join A B --out C`).

usage: python bench/kvb_capacity.py [--data mnist] [--seeds 0] [--sizes 64x256 64x1024 128x4096 256x4096]
       [--epochs 5] [--mode quick] [--key-data omniglot] [--methods kvb kvb_iid linear_iid] [--out FILE]
       [--join FILE ...]"""
import argparse, time
from pathlib import Path

from adaptbook import kvb
from adaptbook.core import Results, provenance, run_digest

KEEP = ('method', 'role', 'acc', 'seed', 'keys', 'examples', 'seconds', 'keys_used', 'keys_total')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='mnist')
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--sizes', nargs='+', default=['64x256', '64x1024', '128x4096', '256x4096'],
                   help='codebooks x keys per codebook')
    p.add_argument('--epochs', type=int, default=5, help="epochs per task (the chapter's 5)")
    p.add_argument('--mode', default='quick', choices=('quick', 'full'))
    p.add_argument('--key-data', nargs='+', default=['omniglot'], help="where the keys are placed: KEY_DATA or 'stream'")
    p.add_argument('--methods', nargs='+', default=['kvb', 'kvb_iid', 'linear_iid'],
                   help="kvb (streamed), kvb_iid (all classes at once), linear_iid (the converged linear probe)")
    p.add_argument('--out', type=Path, default=None, help='write the rows here (Results JSON)')
    p.add_argument('--join', type=Path, nargs='+', default=None, help='merge these files (written by --out) instead')
    a = p.parse_args()
    if a.join:
        parts = [Results.from_json(f) for f in a.join]
        if len({q.meta['code'] for q in parts}) > 1: raise SystemExit("--join: the files were measured by other code")
        seconds, seeds = sum(q.meta['seconds'] for q in parts), sorted({s for q in parts for s in q.meta['seeds']})
        res = Results.merge(*parts, seconds=seconds, code=parts[0].meta['code'], epochs=parts[0].meta['epochs'],
                            provenance=parts[0].meta['provenance'] | {'seconds': seconds, 'seeds': seeds,
                                                                      'parts': [q.meta['provenance'] for q in parts]},
                            key_data=[k for q in parts for k in q.meta['key_data']], seeds=seeds)
        for row in kvb.capacity_table(res): print(row)
        if a.out: res.to_json(a.out); print(f"wrote {a.out}")
        return
    sizes = []
    for s in a.sizes:
        try: C, J = (int(v) for v in s.lower().split('x'))
        except ValueError: p.error(f"--sizes {s!r}: write codebooks x keys, e.g. 128x4096")
        sizes.append((C, J))
    print(f"{a.data}, {a.mode} mode, seeds {a.seeds}, {a.epochs} epochs per task")
    print(f"{'key data':>13s} {'seed':>4s} {'codebooks':>9s} {'keys':>6s} {'streamed':>9s} {'all at once':>11s} "
          f"{'linear probe':>12s} {'gap pt':>7s} {'seconds':>8s}")
    num = lambda acc, m: f"{acc[m]:.4f}" if m in acc else '-'
    rows, start = [], time.perf_counter()
    for kd in a.key_data:
        for seed in a.seeds:
            for C, J in sizes:
                t = time.perf_counter()
                r = kvb.experiment(a.data, keys=(J,), codebooks=C, methods=tuple(a.methods), seed=seed, mode=a.mode,
                                   epochs_per_task=a.epochs, key_data=kd)
                kept = [{k: x.get(k) for k in KEEP} | dict(keys=J, codebooks=C, key_data=kd) for x in r
                        if x['role'] != 'setup']
                rows += kept
                acc = {x['method']: x['acc'] for x in kept}
                gap = (f"{100 * (acc['linear_iid'] - acc.get('kvb', acc.get('kvb_iid'))):.1f}"
                       if 'linear_iid' in acc and ('kvb' in acc or 'kvb_iid' in acc) else '-')
                print(f"{kd:>13s} {seed:4d} {C:9d} {J:6d} {num(acc, 'kvb'):>9s} {num(acc, 'kvb_iid'):>11s} "
                      f"{num(acc, 'linear_iid'):>12s} {gap:>7s} {time.perf_counter() - t:8.0f}", flush=True)
    if a.out:
        seconds = time.perf_counter() - start
        res = Results(rows, dict(chapter='kvb', data=a.data, mode=a.mode, seeds=a.seeds, epochs=a.epochs,
                                 key_data=a.key_data, sizes=a.sizes, code=run_digest('kvb'), seconds=seconds,
                                 provenance=provenance(mode=a.mode, seeds=a.seeds, seconds=seconds)))
        res.to_json(a.out)
        print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
